"""DDict: a distributed dictionary sharded over MPI manager ranks.

``keys`` (encoding, sharding), ``shard`` (one shard with its budget and
checkpoints) and ``ops`` are pure Python; ``transport`` moves frames over
RMA rings; ``manager`` is the rank that serves a shard; ``client`` is the
handle. Importing this package imports no MPI until ``DDict`` is used.
"""
from ..errors import DDictError, DDictFullError, DDictKeyError, DDictManagerError, DDictTimeoutError

__all__ = ["DDict", "DDictError", "DDictFullError", "DDictKeyError", "DDictManagerError", "DDictTimeoutError"]


def __getattr__(name: str) -> object:
    if name == "DDict":
        from .client import DDict

        return DDict
    raise AttributeError(f"module 'mpigroup.ddict' has no attribute {name!r}")
