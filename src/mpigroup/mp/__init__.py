"""The "mpigroup" start method for :mod:`multiprocessing` (adapter only).

``import mpigroup`` registers it; then ``multiprocessing.set_start_method("mpigroup")``
or ``multiprocessing.get_context("mpigroup")`` give Process, Queue, Event,
the locks and ``cpu_count`` from mpigroup. Selecting the method also routes
17 ``multiprocessing`` module functions (``multiprocessing.Queue`` & co.)
through mpigroup while it is the default start method; see
:mod:`mpigroup.mp.start_method` for exactly what changes and how
:func:`unregister_start_method` undoes it.
"""
from .start_method import MPIGroupContext, get_context, register_start_method, unregister_start_method

__all__ = ["MPIGroupContext", "get_context", "register_start_method", "unregister_start_method"]
