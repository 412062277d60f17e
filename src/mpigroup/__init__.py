"""mpigroup: the Dragon programming model on the MPI stack every HPC site has.

Importing this package never initialises MPI; the runtime starts when a
process is launched with ``python -m mpigroup`` or on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    ConfigError,
    MPIGroupError,
    PolicyError,
    ProcessGroupError,
    RemoteError,
    RuntimeNotStarted,
)
from .group import Process, ProcessGroup, ProcessTemplate
from .policy import Policy
from .system import Node, System, cpu_count, current_allocation

__all__ = [
    "ConfigError",
    "MPIGroupError",
    "Node",
    "Policy",
    "PolicyError",
    "Process",
    "ProcessGroup",
    "ProcessGroupError",
    "ProcessTemplate",
    "RemoteError",
    "RuntimeNotStarted",
    "System",
    "cpu_count",
    "current_allocation",
    "__version__",
]
