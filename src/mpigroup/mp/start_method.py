"""The "mpigroup" start method: a ``multiprocessing`` context whose processes are mpigroup workers.

What it changes in the standard library, all of it undone by
:func:`unregister_start_method`:

* :func:`register_start_method` (run by ``import mpigroup``) adds one entry,
  ``"mpigroup"``, to ``multiprocessing.context._concrete_contexts``, the table
  start methods are looked up in. Nothing else changes at import.
* The first time the method is asked for (``multiprocessing.get_context("mpigroup")``
  or ``set_start_method("mpigroup")``; multiprocessing then calls
  ``_check_available``), :func:`_route_module_functions` replaces the 17
  module-level names of ``multiprocessing`` listed in ``_ROUTED`` (``Queue``,
  ``JoinableQueue``, ``SimpleQueue``, ``Event``, ``Lock``, ``RLock``,
  ``Semaphore``, ``BoundedSemaphore``, ``Condition``, ``Barrier``,
  ``cpu_count``, ``Pool``, ``Pipe``, ``Value``, ``Array``, ``RawValue``,
  ``RawArray``) with wrappers. A wrapper calls this context's method while
  "mpigroup" is the default start method and the original function otherwise,
  so code that never selects the method sees the stdlib behaviour.

:func:`unregister_start_method` restores the original 17 functions, removes
the table entry, and resets the default start method if it was "mpigroup".

The rest follows CPython's own design: a start method is a ``BaseContext``
subclass plus a ``Process`` whose ``_Popen`` starts the child. Here
``_Popen`` spawns an mpigroup worker (through the head, with the current
placement policy) that runs ``BaseProcess._bootstrap`` on the unpickled
process object, as the spawn method does.

The mpigroup classes are imported inside the methods on purpose: this module
is imported by ``import mpigroup`` in every process, ``mpigroup.sync``,
``mpigroup.group`` and ``mpigroup.pool`` load MPI, and ``mpigroup.system``
loads PyYAML.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from multiprocessing import context as _mpctx
from multiprocessing import process as _mpprocess
from multiprocessing import util as _mputil
from typing import Any, Optional

NAME = "mpigroup"


def _child_main(process_obj: _mpprocess.BaseProcess) -> None:
    """Runs in the spawned worker: the spawn method's child side, minus fd passing."""
    code = process_obj._bootstrap(parent_sentinel=None)
    raise SystemExit(code)


class Popen:
    """Starts one mpigroup worker for a multiprocessing Process object."""

    method = NAME

    def __init__(self, process_obj: _mpprocess.BaseProcess) -> None:
        from ..group.process import Process

        _mputil._flush_std_streams()
        self.returncode: Optional[int] = None
        self.finalizer = None
        _mpctx.set_spawning_popen(self)  # lets the authkey and handles be pickled, as spawn does
        try:
            self._proc = Process(_child_main, args=(process_obj,), name=process_obj.name)
        finally:
            _mpctx.set_spawning_popen(None)
        self._proc.start()
        self._proc._template.release_arguments()  # the payload is pickled: do not keep process_obj alive
        self.sentinel, self._sentinel_w = os.pipe()
        threading.Thread(target=self._watch, daemon=True, name="mpigroup-mp-sentinel").start()

    def duplicate_for_child(self, fd: int) -> int:
        raise NotImplementedError("the 'mpigroup' start method cannot pass file descriptors to a child "
                                  "(it may run on another node): use mpigroup.Queue instead of Pipe or "
                                  "Connection objects")

    @property
    def pid(self) -> Optional[int]:
        deadline = time.monotonic() + 60
        while self._proc.pid is None and self._proc.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._proc.pid

    def _watch(self) -> None:
        self._proc.join()
        os.close(self._sentinel_w)

    def poll(self, flag: int = os.WNOHANG) -> Optional[int]:
        if self.returncode is None:
            if flag == 0:
                self._proc.join()
            self.returncode = self._proc.exitcode
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        if self.returncode is None:
            self._proc.join(timeout)
        return self.poll()

    def terminate(self) -> None:
        if self.poll() is None:
            self._proc.terminate()

    def kill(self) -> None:
        if self.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        try:
            os.close(self.sentinel)
        except OSError:
            pass


class MPIGroupProcess(_mpprocess.BaseProcess):
    """``multiprocessing.Process`` for the "mpigroup" context."""

    _start_method = NAME

    @staticmethod
    def _Popen(process_obj: _mpprocess.BaseProcess) -> Popen:
        return Popen(process_obj)


class MPIGroupContext(_mpctx.BaseContext):
    """``multiprocessing.get_context("mpigroup")``."""

    _name = NAME
    Process = MPIGroupProcess

    def Queue(self, maxsize: int = 0):
        from ..sync import Queue

        return Queue(maxsize)

    def JoinableQueue(self, maxsize: int = 0):
        from ..sync import JoinableQueue

        return JoinableQueue(maxsize)

    def SimpleQueue(self):
        from ..sync import SimpleQueue

        return SimpleQueue()

    def Event(self):
        from ..sync import Event

        return Event()

    def Lock(self):
        from ..sync import Lock

        return Lock()

    def RLock(self):
        from ..sync import RLock

        return RLock()

    def Semaphore(self, value: int = 1):
        from ..sync import Semaphore

        return Semaphore(value)

    def BoundedSemaphore(self, value: int = 1):
        from ..sync import BoundedSemaphore

        return BoundedSemaphore(value)

    def Condition(self, lock: Any = None):
        from ..sync import Condition

        return Condition(lock)

    def Barrier(self, parties: int, action: Any = None, timeout: Optional[float] = None):
        from ..sync import Barrier

        return Barrier(parties, action, timeout)

    def cpu_count(self) -> int:
        """Usable CPUs across the whole allocation, not this node's."""
        from ..system import cpu_count

        return cpu_count()

    def Pool(self, processes: Optional[int] = None, initializer: Any = None, initargs: tuple = (),
             maxtasksperchild: Optional[int] = None):
        """mpigroup's Pool with multiprocessing's error conventions; ``processes`` defaults to the CPUs
        of the whole allocation."""
        from ..pool import Pool

        return Pool(processes, initializer, initargs, maxtasksperchild, context=self)

    def Pipe(self, duplex: bool = True):
        raise NotImplementedError("Pipe needs file-descriptor passing, which cannot cross nodes: "
                                  "use mpigroup.Queue (or SimpleQueue) between processes")

    def _unsupported_shared_memory(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("Value/Array need a fork-inherited heap; under the 'mpigroup' start "
                                  "method share data through mpigroup.Queue")

    Value = Array = RawValue = RawArray = _unsupported_shared_memory


    def _check_available(self) -> None:
        """Called by multiprocessing when this start method is selected or asked for."""
        _route_module_functions()


_instance = MPIGroupContext()

# multiprocessing.Queue, .Lock ... are methods of the *default* context that
# always build the stdlib classes (only Process consults the start method).
# Once the user selects "mpigroup", these names route to this context while
# it is the default one, and to the original methods otherwise.
_ROUTED = ("Queue", "JoinableQueue", "SimpleQueue", "Event", "Lock", "RLock", "Semaphore",
           "BoundedSemaphore", "Condition", "Barrier", "cpu_count", "Pool", "Pipe",
           "Value", "Array", "RawValue", "RawArray")
_originals: dict = {}


def _route_module_functions() -> None:
    """Route the 17 ``multiprocessing.<name>`` functions of ``_ROUTED`` through this context (once)."""
    if _originals:
        return
    for name in _ROUTED:
        original = getattr(multiprocessing, name)

        def routed(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            if _mpctx._default_context._actual_context is _instance:
                return getattr(_instance, _name)(*args, **kwargs)
            return _original(*args, **kwargs)

        _originals[name] = original
        setattr(multiprocessing, name, functools.wraps(original)(routed))


def register_start_method() -> None:
    """Make "mpigroup" a start method known to multiprocessing (idempotent).

    Adds one entry to the table multiprocessing looks start methods up in;
    nothing else changes until the user selects the method.
    """
    _mpctx._concrete_contexts.setdefault(NAME, _instance)


def unregister_start_method() -> None:
    """Undo :func:`register_start_method` and the routing of ``multiprocessing.Queue`` & co."""
    if _mpctx._concrete_contexts.get(NAME) is _instance:
        del _mpctx._concrete_contexts[NAME]
    for name, original in _originals.items():
        setattr(multiprocessing, name, original)
    _originals.clear()
    if _mpctx._default_context._actual_context is _instance:
        _mpctx._default_context._actual_context = None


def get_context() -> MPIGroupContext:
    """``mpigroup.get_context()``: the multiprocessing context of mpigroup."""
    register_start_method()
    return _instance
