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


def _register_start_method() -> None:
    """Register the "mpigroup" multiprocessing start method (adds one entry, replaces nothing)."""
    from .mp.context import register_start_method

    register_start_method()


_register_start_method()


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
