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
    "LockOwnerDied": "mpigroup.sync",
    "ObjectGone": "mpigroup.sync",
    "get_context": "mpigroup.mp",
    "Pool": "mpigroup.pool",
    "PoolExecutor": "mpigroup.pool",
    "PoolTerminated": "mpigroup.pool",
    "WorkerLostError": "mpigroup.pool",
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


def _setup_logging() -> None:
    """The ``mpigroup`` logger: its level from MPIGROUP_LOG_LEVEL, stderr unless the application logs."""
    from .base import log

    log.setup()


_setup_logging()


def _register_start_method() -> None:
    """Register the "mpigroup" multiprocessing start method (adds one entry, replaces nothing)."""
    from .mp.start_method import register_start_method

    register_start_method()


_register_start_method()


def _register_head_services() -> None:
    """Tell the runtime's head which layer above it answers which requests (loaded on first use)."""
    from .runtime import requests

    def sync_operations():
        from .sync.head_service import HEAD_OPERATIONS

        return HEAD_OPERATIONS

    def telemetry_operations():
        from .telemetry.service import HEAD_OPERATIONS

        return HEAD_OPERATIONS

    requests.register_provider(("universe_join", "arena_alloc", "arena_free"), sync_operations)
    requests.register_provider(("telemetry_put", "telemetry_stopping"), telemetry_operations)


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
    from .errors import (ConfigError, MPIGroupError, PolicyError, ProcessGroupError, RemoteError,
                         RuntimeNotStarted)
    from .group import Process, ProcessGroup, ProcessTemplate
    from .ddict import DDict
    from .errors import DDictError, DDictFullError, DDictKeyError, DDictManagerError, DDictTimeoutError
    from .policy import Policy
    from .pool import Pool, PoolExecutor, PoolTerminated, WorkerLostError
    from .sync import (Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, Lock, LockOwnerDied,
                       ObjectGone, Queue, RLock, Semaphore, SimpleQueue)
    from .system import Node, System, cpu_count, current_allocation
    from .telemetry import Telemetry
