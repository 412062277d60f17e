"""mpigroup: the Dragon programming model on the MPI stack every HPC site has.

Importing this package never initialises MPI, and it imports submodules only
when a name is first used (PEP 562): every spawned worker imports
``mpigroup``, so a light package import is paid once per process launched.
"""
from __future__ import annotations

import importlib

TYPE_CHECKING = False  # avoids importing typing in every spawned worker

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "mpigroup.errors",
    "MPIGroupError": "mpigroup.errors",
    "PolicyError": "mpigroup.errors",
    "ProcessGroupError": "mpigroup.errors",
    "RemoteError": "mpigroup.errors",
    "RuntimeNotStarted": "mpigroup.errors",
    "SettingError": "mpigroup.errors",
    "ShuttingDown": "mpigroup.errors",
    "HeadUnreachable": "mpigroup.errors",
    "HostLost": "mpigroup.errors",
    "SharedObjectError": "mpigroup.errors",
    "ObjectGone": "mpigroup.errors",
    "LockOwnerDied": "mpigroup.errors",
    "QueueBroken": "mpigroup.errors",
    "ArenaFull": "mpigroup.errors",
    "PoolError": "mpigroup.errors",
    "BrokenPool": "mpigroup.errors",
    "WorkerLostError": "mpigroup.errors",
    "PoolTerminated": "mpigroup.errors",
    "TelemetryError": "mpigroup.errors",
    "Process": "mpigroup.group",
    "ProcessGroup": "mpigroup.group",
    "ProcessTemplate": "mpigroup.group",
    "Policy": "mpigroup.policy",
    "Node": "mpigroup.system",
    "System": "mpigroup.system",
    "cpu_count": "mpigroup.system",
    "Queue": "mpigroup.sync",
    "JoinableQueue": "mpigroup.sync",
    "SimpleQueue": "mpigroup.sync",
    "Event": "mpigroup.sync",
    "Lock": "mpigroup.sync",
    "RLock": "mpigroup.sync",
    "Semaphore": "mpigroup.sync",
    "BoundedSemaphore": "mpigroup.sync",
    "Condition": "mpigroup.sync",
    "Barrier": "mpigroup.sync",
    "get_context": "mpigroup.mp",
    "Pool": "mpigroup.pool",
    "PoolExecutor": "mpigroup.pool",
    "current_allocation": "mpigroup.system",
    "DDict": "mpigroup.ddict",
    "DDictError": "mpigroup.errors",
    "DDictFullError": "mpigroup.errors",
    "DDictKeyError": "mpigroup.errors",
    "DDictManagerError": "mpigroup.errors",
    "DDictTimeoutError": "mpigroup.errors",
    "Telemetry": "mpigroup.telemetry",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


# The imports below are light (no MPI, no third-party library): every spawned worker pays them.
from .base import log as _log  # noqa: E402
from .mp.start_method import register_start_method as _register_start_method  # noqa: E402
from .runtime import requests as _requests  # noqa: E402

# the ``mpigroup`` logger: its level from MPIGROUP_LOG_LEVEL, stderr unless the application logs
_log.setup()
# the "mpigroup" multiprocessing start method: adds one entry to multiprocessing's table; the 17
# module functions it routes are touched only once the method is asked for (see mpigroup.mp)
_register_start_method()


def _register_head_services() -> None:
    """Tell the runtime's head which layer above it answers which requests (loaded on first use)."""

    def sync_operations():  # sync and telemetry load MPI: imported when the head first needs them
        from .sync.head_service import HEAD_OPERATIONS

        return HEAD_OPERATIONS

    def telemetry_operations():
        from .telemetry.service import HEAD_OPERATIONS

        return HEAD_OPERATIONS

    _requests.register_provider(("universe_join", "arena_alloc", "arena_free", "rma", "rma_wait", "rma_drain", "pid_gone"),
                                sync_operations)
    _requests.register_provider(("telemetry_put", "telemetry_stopping"), telemetry_operations)


_register_head_services()


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mpigroup' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .errors import (ArenaFull, BrokenPool, ConfigError, HeadUnreachable, HostLost, LockOwnerDied,
                         MPIGroupError, ObjectGone, PolicyError, PoolError, PoolTerminated, ProcessGroupError,
                         QueueBroken, RemoteError, RuntimeNotStarted, SettingError, SharedObjectError,
                         ShuttingDown, TelemetryError, WorkerLostError)
    from .group import Process, ProcessGroup, ProcessTemplate
    from .ddict import DDict
    from .errors import DDictError, DDictFullError, DDictKeyError, DDictManagerError, DDictTimeoutError
    from .policy import Policy
    from .pool import Pool, PoolExecutor
    from .sync import (Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, Lock, Queue, RLock,
                       Semaphore, SimpleQueue)
    from .system import Node, System, cpu_count, current_allocation
    from .telemetry import Telemetry
