"""Every exception mpigroup raises on purpose, under :class:`MPIGroupError`.

Pure Python and the bottom of the import layers: it imports nothing from
mpigroup, so any layer may raise these. Where a ``multiprocessing`` user
expects a standard base (``TimeoutError``, ``ValueError``, ``KeyError``,
``MemoryError``), the class derives from it as well::

    MPIGroupError
    ├── SettingError (ValueError)          an MPIGROUP_* variable has a bad value
    ├── ConfigError (ValueError)           a YAML policy file is invalid
    ├── PolicyError (ValueError)           a policy the allocation cannot satisfy
    ├── RuntimeNotStarted (RuntimeError)
    ├── RuntimeStartError (RuntimeError)
    ├── ShuttingDown (RuntimeError)        the run is ending: no new processes or steps
    ├── HeadUnreachable (RuntimeError)     the head did not answer in time
    ├── ProtocolError (RuntimeError)       a message to or from the head broke the protocol
    ├── HostLost (RuntimeError)
    ├── ProcessGroupError (RuntimeError)
    ├── RemoteError                        an exception raised in another process
    ├── SharedObjectError (RuntimeError)   Queue, Event, locks
    │   ├── ObjectGone                     the object was destroyed
    │   ├── LockOwnerDied                  its holder's process is gone
    │   ├── QueueBroken                    a process died while moving a frame
    │   ├── LeftUniverse                   this process left the shared-object universe
    │   └── ArenaFull (MemoryError)
    ├── PoolError
    │   ├── BrokenPool (RuntimeError)      the pool cannot run tasks any more
    │   ├── WorkerLostError                a worker died while it ran the task
    │   └── PoolTerminated
    ├── DDictError
    │   ├── DDictKeyError (KeyError)
    │   ├── DDictFullError
    │   ├── DDictTimeoutError (TimeoutError)
    │   └── DDictManagerError              a manager died or its channel broke
    ├── TelemetryError (RuntimeError)
    │   └── GPUUnavailable
    └── PMIxSpawnError (RuntimeError)
"""
from __future__ import annotations

from typing import Optional


class MPIGroupError(Exception):
    """Base class of every error mpigroup raises on purpose."""


class PolicyError(MPIGroupError, ValueError):
    """A policy cannot be satisfied by the allocation (bad host, CPU or GPU)."""


class SettingError(MPIGroupError, ValueError):
    """An ``MPIGROUP_*`` environment variable has a value mpigroup cannot use."""

    def __init__(self, name: str, value: str, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}={value!r} is not valid: {allowed}")

    def __reduce__(self):
        return (type(self), (self.name, self.value, self.allowed))


class ConfigError(MPIGroupError, ValueError):
    """A configuration file is invalid; the message names file, field and reason."""


class RuntimeNotStarted(MPIGroupError, RuntimeError):
    """The process is not part of an mpigroup runtime."""


class RuntimeStartError(MPIGroupError, RuntimeError):
    """The runtime cannot start with these initial ranks (the message says why)."""


class ShuttingDown(MPIGroupError, RuntimeError):
    """The run is shutting down: it starts no new processes and no new shared-object steps."""


class HeadUnreachable(MPIGroupError, RuntimeError):
    """The head did not answer within the timeout."""


class ProtocolError(MPIGroupError, RuntimeError):
    """A message to or from the head broke the protocol (e.g. a reply to another request)."""


class HostLost(MPIGroupError, RuntimeError):
    """A host of the allocation stopped answering; its processes count as lost."""


class ProcessGroupError(MPIGroupError, RuntimeError):
    """A member of a ProcessGroup failed, or the group was used wrongly."""


class RemoteError(MPIGroupError):
    """An exception raised inside a spawned process, re-raised in the caller.

    Carries the remote traceback text, the puid, the MPI rank inside its spawned
    set and the host, in the spirit of mpi4py.futures' remote tracebacks.
    """

    def __init__(
        self,
        exc_type: str,
        message: str,
        traceback_text: str,
        *,
        puid: Optional[int] = None,
        rank: Optional[int] = None,
        host: Optional[str] = None,
    ) -> None:
        self.exc_type = exc_type
        self.message = message
        self.traceback_text = traceback_text
        self.puid = puid
        self.rank = rank
        self.host = host
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"puid {self.puid}, rank {self.rank} on host {self.host}"
        return (
            f"{self.exc_type}: {self.message}\n"
            f"--- remote traceback ({where}) ---\n{self.traceback_text.rstrip()}"
        )

    def __reduce__(self):  # keep it picklable with keyword fields
        return (
            _rebuild_remote_error,
            (self.exc_type, self.message, self.traceback_text, self.puid, self.rank, self.host),
        )


def _rebuild_remote_error(exc_type, message, tb, puid, rank, host) -> RemoteError:
    return RemoteError(exc_type, message, tb, puid=puid, rank=rank, host=host)


class SharedObjectError(MPIGroupError, RuntimeError):
    """A Queue, Event, lock or other shared object cannot be used."""


class ObjectGone(SharedObjectError):
    """The shared object was destroyed (its last handle went away)."""


class LockOwnerDied(SharedObjectError):
    """A lock is held by a process that no longer exists."""


class QueueBroken(SharedObjectError):
    """A process died in the middle of moving a frame through this queue."""


class LeftUniverse(SharedObjectError):
    """This process has left the shared-object universe (it is exiting)."""


class ArenaFull(SharedObjectError, MemoryError):
    """The head's arena window has no free block of the requested size."""


class PoolError(MPIGroupError):
    """A Pool could not run a task."""


class BrokenPool(PoolError, RuntimeError):
    """The pool cannot run tasks any more (its service thread failed or it lost its workers)."""


class WorkerLostError(PoolError):
    """A pool worker died (or exited) while it ran this task, or before its result was sent."""


class PoolTerminated(PoolError):
    """The pool was terminated before this task's result arrived."""


class TelemetryError(MPIGroupError, RuntimeError):
    """Telemetry is used in a way the run does not allow."""


class GPUUnavailable(TelemetryError):
    """GPU metrics were asked for, but no GPU library or device answers."""


class PMIxSpawnError(MPIGroupError, RuntimeError):
    """PMIx_Spawn is not available or failed (the message has PMIx's status)."""


class DDictError(MPIGroupError):
    """A DDict operation failed."""


class DDictKeyError(DDictError, KeyError):
    """The key is not in the DDict (a ``KeyError``)."""


class DDictFullError(DDictError):
    """A write would exceed a manager's share of ``total_mem``; nothing was changed."""


class DDictTimeoutError(DDictError, TimeoutError):
    """A DDict request was not answered within its timeout."""


class DDictManagerError(DDictError):
    """A DDict manager process died or cannot be reached."""
