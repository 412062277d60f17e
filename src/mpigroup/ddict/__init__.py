"""DDict: a distributed dictionary sharded over MPI manager ranks.

``keys`` (encoding, sharding) and ``store`` (one shard with its budget and
checkpoints) are pure Python; ``transport`` moves frames over RMA rings;
``manager`` is the rank that serves a shard; ``client`` is the handle.
"""
from ..errors import DDictError, DDictFullError, DDictKeyError, DDictManagerError, DDictTimeoutError
from .client import DDict

__all__ = ["DDict", "DDictError", "DDictFullError", "DDictKeyError", "DDictManagerError", "DDictTimeoutError"]
