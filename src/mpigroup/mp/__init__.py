"""The "mpigroup" start method for :mod:`multiprocessing` (adapter only).

``import mpigroup`` registers it; then ``multiprocessing.set_start_method("mpigroup")``
or ``multiprocessing.get_context("mpigroup")`` give Process, Queue, Event,
the locks and ``cpu_count`` from mpigroup.
"""
from .context import MPIGroupContext, get_context, register_start_method, unregister_start_method

__all__ = ["MPIGroupContext", "get_context", "register_start_method", "unregister_start_method"]
