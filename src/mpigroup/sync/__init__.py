"""Queue, Event and synchronization primitives in MPI one-sided RMA windows.

See :mod:`mpigroup.sync.universe` for how the windows reach every process.
"""
from ..runtime.context import prepare_mpi_environment

prepare_mpi_environment()  # these modules initialise MPI on import: mpigroup's defaults first

from .primitives import Barrier, BoundedSemaphore, Condition, Event, Lock, LockOwnerDied, RLock, Semaphore  # noqa: E402
from .queues import JoinableQueue, Queue, SimpleQueue
from .rma import ObjectGone

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "JoinableQueue", "Lock", "LockOwnerDied",
           "ObjectGone", "Queue", "RLock", "Semaphore", "SimpleQueue"]
