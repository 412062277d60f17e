"""Queue, Event and synchronization primitives in MPI one-sided RMA windows.

See :mod:`mpigroup.sync.universe` for how the windows reach every process.
"""
from .primitives import Barrier, BoundedSemaphore, Condition, Event, Lock, LockOwnerDied, RLock, Semaphore
from .queues import JoinableQueue, Queue, SimpleQueue
from .rma import ObjectGone

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "JoinableQueue", "Lock", "LockOwnerDied",
           "ObjectGone", "Queue", "RLock", "Semaphore", "SimpleQueue"]
