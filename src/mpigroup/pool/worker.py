"""The pool worker loop: one top-level function with explicit arguments (after loky).

A worker takes tasks from the pool's shared task queue (work sharing: an idle
worker takes the next task, so slow tasks never hold up a queue behind
them), records the task it is running in its slot of the pool's shared
state, so that the pool can fail exactly that task if the worker dies, and
puts ``(job, index, ok, value)`` on the result queue.
"""
from __future__ import annotations

import os
import socket
import traceback
from typing import Any, Callable, Optional

STOP = None  # a task-queue sentinel: one per worker at close()

# Functions of the user's __main__ travel by value (cloudpickle), each with a
# private copy of the globals it uses; as with multiprocessing's spawn, where
# __main__ is imported once per worker, they must share one namespace, or
# globals an initializer sets would be invisible to the tasks.
_MAIN_GLOBALS: dict = {"__name__": "__mp_main__"}


def adopt_main(fn: Any) -> Any:
    """Rebind a by-value function of ``__main__`` to this worker's shared main namespace."""
    import types

    if not isinstance(fn, types.FunctionType) or fn.__module__ != "__main__" or fn.__globals__ is _MAIN_GLOBALS:
        return fn
    for name, value in fn.__globals__.items():
        _MAIN_GLOBALS.setdefault(name, value)
    shared = types.FunctionType(fn.__code__, _MAIN_GLOBALS, fn.__name__, fn.__defaults__, fn.__closure__)
    shared.__kwdefaults__ = fn.__kwdefaults__
    shared.__dict__.update(fn.__dict__)
    shared.__qualname__ = fn.__qualname__
    return shared


def run_worker(tasks, results, slots, slot: int, initializer: Optional[Callable], initargs: tuple,
               maxtasks: Optional[int]) -> None:
    """Serve tasks until the STOP sentinel or ``maxtasks`` tasks (then exit to be replaced)."""
    import cloudpickle

    from ..errors import RemoteError

    if initializer is not None:
        adopt_main(initializer)(*initargs)
    functions: dict[int, Callable] = {}
    host = socket.gethostname()
    rank = int(os.environ.get("MPIGROUP_PUID", "0"))
    done = 0
    while maxtasks is None or done < maxtasks:
        task = tasks.get()
        if task is STOP:
            break
        job, index, fn_bytes, kind, payload = task
        slots[slot] = job * 1_000_000_000 + index + 1  # what this worker runs, for the pool's monitor
        fn = functions.get(job)
        if fn is None:
            fn = functions[job] = adopt_main(cloudpickle.loads(fn_bytes))
            if len(functions) > 64:
                functions.pop(next(iter(functions)))
        try:
            if kind == "call":
                args, kwargs = payload
                value: Any = fn(*args, **kwargs)
            elif kind == "map":
                value = [fn(x) for x in payload]
            else:  # "starmap"
                value = [fn(*x) for x in payload]
            out = (job, index, True, value)
        except BaseException as exc:  # returned to the caller with our traceback
            remote = RemoteError(type(exc).__qualname__, str(exc), traceback.format_exc(), puid=rank,
                                 rank=slot, host=host)
            out = (job, index, False, (_picklable(exc), remote))
        try:
            results.put(out)
        except TypeError as exc:  # the result cannot be pickled: report that instead
            remote = RemoteError("TypeError", str(exc), traceback.format_exc(), puid=rank, rank=slot, host=host)
            results.put((job, index, False, (None, remote)))
        slots[slot] = 0
        done += 1


def _picklable(exc: BaseException) -> Optional[BaseException]:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None
