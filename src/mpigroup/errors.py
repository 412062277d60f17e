"""Exception types shared by every layer. Pure Python, no MPI."""
from __future__ import annotations

from typing import Optional


class MPIGroupError(Exception):
    """Base class of every error mpigroup raises on purpose."""


class PolicyError(MPIGroupError, ValueError):
    """A policy cannot be satisfied by the allocation (bad host, CPU or GPU)."""


class ConfigError(MPIGroupError, ValueError):
    """A configuration file is invalid; the message names file, field and reason."""


class RuntimeNotStarted(MPIGroupError, RuntimeError):
    """The process is not part of an mpigroup runtime."""


class RuntimeStartError(MPIGroupError, RuntimeError):
    """The runtime cannot start with these initial ranks (the message says why)."""


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
