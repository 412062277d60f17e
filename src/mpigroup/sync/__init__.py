"""Queue, Event and synchronization primitives in MPI one-sided RMA windows.

See :mod:`mpigroup.sync.universe` for how the windows reach every process.
Names are loaded on first use (PEP 562): importing this package, or its pure
modules :mod:`~mpigroup.sync.arena` and :mod:`~mpigroup.sync.serialize`,
initialises no MPI; the modules that do apply mpigroup's MPI defaults first
(:mod:`mpigroup.sync.mpi`).
"""
from __future__ import annotations

import importlib

from ..errors import ArenaFull, LeftUniverse, LockOwnerDied, ObjectGone, QueueBroken, SharedObjectError

TYPE_CHECKING = False

_EXPORTS = {
    "Barrier": "primitives",
    "BoundedSemaphore": "primitives",
    "Condition": "primitives",
    "Event": "primitives",
    "Lock": "primitives",
    "RLock": "primitives",
    "Semaphore": "primitives",
    "JoinableQueue": "queues",
    "Queue": "queues",
    "SimpleQueue": "queues",
    "Ring": "ring",
}

__all__ = sorted(list(_EXPORTS) + ["ArenaFull", "LeftUniverse", "LockOwnerDied", "ObjectGone", "QueueBroken",
                                   "SharedObjectError"])


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mpigroup.sync' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .primitives import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore
    from .queues import JoinableQueue, Queue, SimpleQueue
    from .ring import Ring
