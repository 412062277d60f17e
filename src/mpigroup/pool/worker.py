"""The pool worker loop: one top-level function with explicit arguments (after loky).

A worker takes frames of tasks from the pool's shared task queue (work
sharing: an idle worker takes the next frame; the pool batches only short
tasks, see batching.py), records the task it is running in its slot of the
pool's shared state, so that the pool can fail exactly the tasks lost if the
worker dies and run again those it never started, and answers each frame
with one frame of ``(job, index, ok, value)`` results.
"""
from __future__ import annotations

import pickle
import time
import traceback
import types
from multiprocessing.pool import MaybeEncodingError
from typing import Any, Callable, Optional

from ..base import config
from ..errors import RemoteError
from ..runtime.nodeinfo import node_name

STOP = None  # a task-queue sentinel: one per worker at close()

# Functions of the user's __main__ travel by value (cloudpickle), each with a
# private copy of the globals it uses; as with multiprocessing's spawn, where
# __main__ is imported once per worker, they must share one namespace, or
# globals an initializer sets would be invisible to the tasks.
_MAIN_GLOBALS: dict = {"__name__": "__mp_main__"}


def adopt_main(fn: Any) -> Any:
    """Rebind a by-value function of ``__main__`` to this worker's shared main namespace."""
    if not isinstance(fn, types.FunctionType) or fn.__module__ != "__main__" or fn.__globals__ is _MAIN_GLOBALS:
        return fn
    for name, value in fn.__globals__.items():
        _MAIN_GLOBALS.setdefault(name, value)
    shared = types.FunctionType(fn.__code__, _MAIN_GLOBALS, fn.__name__, fn.__defaults__, fn.__closure__)
    shared.__kwdefaults__ = fn.__kwdefaults__
    shared.__dict__.update(fn.__dict__)
    shared.__qualname__ = fn.__qualname__
    return shared


SLOT_BATCH = 4096  # a worker's slot holds batch_id * SLOT_BATCH + position + 1 while it runs a task


def _call(fn: Callable, kind: str, payload: Any) -> Any:
    if kind == "call":
        args, kwargs = payload
        return fn(*args, **kwargs)
    if kind == "map":
        return [fn(x) for x in payload]
    return [fn(*x) for x in payload]  # "starmap"


def run_worker(tasks, results, slots, slot: int, initializer: Optional[Callable], initargs: tuple,
               maxtasks: Optional[int]) -> None:
    """Serve task frames until the STOP frame or ``maxtasks`` tasks (then exit to be replaced).

    A frame is ``(batch_id, {fn_key: fn_bytes}, [(job, index, fn_key, kind, payload_bytes), ...])``;
    the answer is one frame ``(batch_id, [(job, index, ok, value), ...], seconds)``.
    """
    slots[slot] = 0  # booted: a member of the universe (the pool may kill it from now on)
    if initializer is not None:
        adopt_main(initializer)(*initargs)
    functions: dict[int, Callable] = {}
    host = node_name()
    puid = config.get("MPIGROUP_PUID")
    done = 0
    while maxtasks is None or done < maxtasks:
        frame = tasks.get()
        if frame is STOP:
            break
        batch_id, fn_table, batch = frame
        t0 = time.perf_counter()
        out = []
        for position, (job, index, key, kind, payload) in enumerate(batch):
            slots[slot] = batch_id * SLOT_BATCH + position + 1  # what runs here, for the pool's monitor
            try:
                fn = functions.get(key)
                if fn is None:
                    fn = functions[key] = adopt_main(pickle.loads(fn_table[key]))
                    if len(functions) > 64:
                        functions.pop(next(iter(functions)))
                out.append((job, index, True, _call(fn, kind, pickle.loads(payload))))
            except BaseException as exc:  # returned to the caller with our traceback
                remote = RemoteError(type(exc).__qualname__, str(exc), traceback.format_exc(), puid=puid,
                                     rank=slot, host=host)
                out.append((job, index, False, (_picklable(exc), remote)))
        seconds = time.perf_counter() - t0
        try:
            results.put((batch_id, out, seconds))
        except TypeError:  # some result cannot be pickled: report those instead (multiprocessing's error)
            results.put((batch_id, [_encodable(r, puid, slot, host) for r in out], seconds))
        slots[slot] = 0
        done += len(batch)


def _encodable(result: tuple, puid: int, slot: int, host: str) -> tuple:
    from ..sync import serialize  # initialises MPI on import: this module is imported by the pool too

    job, index, ok, value = result
    try:
        serialize.dumps(value)
        return result
    except TypeError as exc:
        error = MaybeEncodingError(exc.__cause__ or exc, value)
        remote = RemoteError("MaybeEncodingError", str(error), traceback.format_exc(), puid=puid, rank=slot,
                             host=host)
        return (job, index, False, (_picklable(error), remote))


def _picklable(exc: BaseException) -> Optional[BaseException]:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None
