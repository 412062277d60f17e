"""Pool: ``multiprocessing.pool.Pool`` over mpigroup workers placed by policy.

Design:

* Workers are mpigroup processes running :func:`.worker.run_worker`, spawned
  as one ProcessGroup (one spawn, one universe step) with each worker's own
  placement policy; replacements (``maxtasksperchild``, dead workers) are
  single processes.
* The caller pickles each task (so a pickling error raises in the caller;
  a function is pickled once, not once per task) and appends it to an
  outbox. One pump thread sends the outbox as frames on a shared
  :class:`mpigroup.Queue` (work sharing) and takes result frames from
  another; both live in MPI RMA windows. Short tasks travel several to a
  frame (see batching.py), which is where the throughput comes from.
* Each worker records the task it runs (frame and position) in its slot of a
  shared array. A monitor thread polls the head's process table; when a
  worker exits while its slot names a task, the tasks of that frame whose
  results were lost raise :class:`WorkerLostError` (in the spirit of loky's
  ``TerminatedWorkerError``), those it had not started are sent again, and a
  replacement starts. The pool never waits on a task whose worker is gone.
* If the pump or the monitor thread fails, the failure is logged with its
  traceback, every pending result and every later call raises
  :class:`~mpigroup.errors.BrokenPool`, and the workers are stopped: a pool
  never hangs on a thread that is gone.

The shared-object modules (``mpigroup.sync``) are imported where they are
first used, not at the top: importing them initialises MPI, and importing
``mpigroup.pool`` (or ``mpigroup.WorkerLostError``) must not.
"""
from __future__ import annotations

import collections
import enum
import itertools
import logging
import pickle
import queue
import threading
import time
import types
import warnings
from multiprocessing.pool import RemoteTraceback
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from ..base.waiting import Backoff, deadline_after, expired
from ..errors import BrokenPool, PoolTerminated, RemoteError, WorkerLostError
from ..group import ProcessGroup, ProcessTemplate
from ..policy import Policy
from ..runtime import context
from ..runtime.protocol import MemberStatus
from ..runtime.requests import Op
from ..system import cpu_count
from .batching import BatchPlanner
from .results import ApplyResult, IMapIterator, MapResult
from .worker import SLOT_BATCH, STOP, run_worker

__all__ = ["ApplyResult", "BrokenPool", "Pool", "PoolState", "PoolTerminated", "WorkerLostError"]

log = logging.getLogger(__name__)


def _lost_traceback(status: MemberStatus) -> str:
    """What stands in for the traceback of a worker that died without reporting one."""
    code = status.exitcode
    how = f"was killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exited with code {code}"
    return (f"(no Python traceback: the worker process (pid {status.pid}) {how} "
            "before it could report one)")


class PoolState(str, enum.Enum):
    """A pool's state; the values are multiprocessing.pool's, so ``pool._state == "RUN"`` holds too."""

    RUN = "RUN"
    CLOSE = "CLOSE"
    TERMINATE = "TERMINATE"


RUN, CLOSE, TERMINATE = PoolState.RUN, PoolState.CLOSE, PoolState.TERMINATE

BOOTING = -1  # a worker slot's value from the spawn until the worker runs
_INLINE_BYTES = 64 << 10  # larger pickled arguments travel out of band (no copy into the frame's pickle)


def _remote_traceback(remote: RemoteError) -> BaseException:
    """multiprocessing's ``__cause__`` (``RemoteTraceback``), naming the worker."""
    if not remote.traceback_text:
        return RemoteTraceback(str(remote.message))
    where = f"(pool worker puid {remote.puid} on host {remote.host})"
    return RemoteTraceback(f'\n"""\n{where}\n{remote.traceback_text}"""')


_pickle_value: Optional[Callable] = None


def _pickled(obj: Any, what: str) -> bytes:
    """Pickle in the caller; the pickler's own exception (as with multiprocessing), with a note."""
    global _pickle_value
    if _pickle_value is None:
        from ..sync.serialize import pickle_value as _pickle_value  # initialises MPI: see the module docstring
    try:
        return _pickle_value(obj)
    except Exception as exc:
        exc.add_note(f"mpigroup.Pool: the task's {what} cannot be pickled, so it cannot reach the workers")
        raise


class _WorkerHandle:
    """What ``Pool._pool`` lists (as multiprocessing's pool lists its processes): ``pid``, ``is_alive()``."""

    def __init__(self, puid: int) -> None:
        self.puid = puid

    def _status(self) -> MemberStatus:
        return context.current().api.call(Op.STATUS, puids=[self.puid])[0]

    @property
    def pid(self) -> Optional[int]:
        deadline = deadline_after(30)
        while True:
            st = self._status()
            if st.pid or st.exited or expired(deadline):
                return st.pid
            time.sleep(0.01)

    def is_alive(self) -> bool:
        return not self._status().exited


class Pool:
    """``Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None, *, policy=None,
    processes_per_policy=None)``: the ``multiprocessing.pool.Pool`` API over mpigroup workers.

    ``processes`` defaults to the usable CPUs of the whole allocation. With a
    list of policies and ``processes_per_policy=k``, k workers start per
    policy, each bound to its policy's host, CPUs and GPUs. A pool made
    through ``multiprocessing`` (``context`` set) follows its error
    conventions: a task's exception has a ``multiprocessing.pool.RemoteTraceback``
    as ``__cause__`` instead of an :class:`mpigroup.RemoteError`.
    """

    def __init__(self, processes: Optional[int] = None, initializer: Optional[Callable] = None,
                 initargs: Sequence[Any] = (), maxtasksperchild: Optional[int] = None, *,
                 policy: Policy | Sequence[Policy] | None = None,
                 processes_per_policy: Optional[int] = None, context: Any = None) -> None:
        from ..sync import Queue  # initialises MPI: see the module docstring
        from ..sync.primitives import SharedWords

        self._state: Optional[PoolState] = None  # __del__ of a pool whose construction failed
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int) or maxtasksperchild < 1):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        policies = list(policy) if isinstance(policy, (list, tuple)) else ([policy] if policy else [None])
        if processes_per_policy is not None:
            if processes_per_policy < 1:
                raise ValueError("processes_per_policy must be at least 1")
            placement = [p for p in policies for _ in range(processes_per_policy)]
        else:
            n = cpu_count() if processes is None else processes
            if n < 1:
                raise ValueError("Number of processes must be at least 1")
            placement = [policies[i % len(policies)] for i in range(n)]
        self._placement = placement
        self._processes = len(placement)
        self._initializer, self._initargs = initializer, tuple(initargs)
        self._maxtasks = maxtasksperchild
        self._cause = _remote_traceback if context is not None else None
        self._tasks, self._results = Queue(), Queue()
        self._slots = SharedWords(self._processes)
        self._jobs: dict[int, Any] = {}  # job id -> result handle, until complete
        self._job_ids = itertools.count(1)
        self._outbox: collections.deque = collections.deque()  # task records not yet sent
        self._batches: dict[int, list] = {}  # frame id -> its task records, until answered
        self._batch_ids = itertools.count(1)
        self._in_flight = 0  # tasks in self._batches
        self._short_frames = False  # the last frame sent should take under 5 ms
        self._max_frames = 2 * self._processes  # unanswered frames: one running and one waiting per worker
        self._deaths: collections.deque = collections.deque()  # (slot, status, slot value), for the pump
        self._planner = BatchPlanner(self._processes, single=maxtasksperchild is not None)
        self._functions: dict[int, tuple] = {}  # id(function) -> (function, key, bytes)
        self._fn_keys: dict[bytes, int] = {}
        self._fn_ids = itertools.count(1)
        self._fn_lock = threading.Lock()
        self._last_function: tuple = (None, 0, b"")  # (function, key, bytes) of the last stable function
        self._wake = threading.Event()
        self._sleeping = False
        self._stops_sent = False
        self._broken_by: Optional[str] = None  # why the pool broke (a service thread failed)
        self._lock = threading.RLock()
        self._monitor_lock = threading.Lock()
        self._workers: dict[int, Any] = {}  # slot -> (Process or ProcessGroup, puid)
        self._start_workers(list(range(self._processes)))
        self._state = RUN
        self._threads = [threading.Thread(target=self._pump, daemon=True, name="mpigroup-pool-pump"),
                         threading.Thread(target=self._monitor, daemon=True, name="mpigroup-pool-monitor")]
        for t in self._threads:
            t.start()

    # -------------------------------------------------------------- workers
    def _template(self, slot: int) -> ProcessTemplate:
        return ProcessTemplate(run_worker, args=(self._tasks, self._results, self._slots, slot, self._initializer,
                                                 self._initargs, self._maxtasks),
                               policy=self._placement[slot])

    def _start_workers(self, slots: list[int]) -> None:
        group = ProcessGroup(ignore_error_on_exit=True, name="pool")
        for slot in slots:
            self._slots[slot] = BOOTING  # the worker stores 0 once it is a member of the universe
            group.add_process(1, self._template(slot))
        group.start()
        for slot, puid in zip(slots, group.puids):
            self._workers[slot] = (group, puid)

    @property
    def _pool(self) -> list:
        """The live workers (``pid``, ``is_alive()``), as ``multiprocessing.pool.Pool._pool``."""
        with self._lock:
            return [_WorkerHandle(puid) for _, puid in self._workers.values()]

    def _repopulate_pool(self) -> None:
        """Replace exited workers now (the monitor thread does it within 50 ms anyway)."""
        self._check_workers()

    def _monitor(self) -> None:
        """The monitor thread: finds exited workers every 50 ms; if it fails, the pool breaks."""
        try:
            while self._state != TERMINATE:
                time.sleep(0.05)
                if not self._check_workers():
                    return
        except Exception as exc:
            if self._state != TERMINATE:
                self._broken("monitor", exc)

    def _check_workers(self) -> bool:
        """Find exited workers: hand their last task to the pump, start replacements. False: monitor ends."""
        with self._monitor_lock:
            with self._lock:
                live = {slot: puid for slot, (_, puid) in self._workers.items()}
            if not live:
                return self._state == RUN
            try:
                statuses = context.current().api.call(Op.STATUS, puids=list(live.values()))
            except Exception:  # the head is busy or shutting down: look again next time
                return True
            exited = [(slot, st) for (slot, _), st in zip(live.items(), statuses) if st.exited]
            if not exited:
                return True
            replace = []
            with self._lock:
                if self._state == TERMINATE:
                    return False
                for slot, st in exited:
                    self._workers.pop(slot, None)
                    running = max(0, self._slots[slot])
                    if running:
                        self._deaths.append((slot, st, running))
                    if self._state == RUN or not self._stops_sent:  # after close, STOPs go once all is done
                        replace.append(slot)
                if replace:
                    self._start_workers(replace)
            self._poke()
            return True

    # ----------------------------------------------------------------- pump
    def _poke(self) -> None:
        if self._sleeping:
            self._wake.set()

    def _pump(self) -> None:
        """The one thread that moves frames: sends the outbox, takes results, handles lost workers.

        Between polls it spins 100 µs, then sleeps from 20 µs doubling up to a cap
        that says how soon something is due; a new task wakes it at once.
        """
        backoff = Backoff(spin=1e-4, initial=2e-5, maximum=2e-2)
        try:
            while self._state != TERMINATE:
                busy = False
                if self._outbox and len(self._batches) < self._max_frames:
                    self._send()
                    busy = True
                received = 0
                while received < 64:
                    try:
                        frame = self._results.get(block=False)
                    except queue.Empty:
                        break
                    self._receive(*frame)
                    del frame  # results must not outlive their job (multiprocessing's bpo-29861)
                    received += 1
                if received:
                    busy = True
                elif self._deaths:  # the result queue is empty: a dead worker's results are all in
                    self._bury()
                    busy = True
                if self._state == CLOSE and not self._stops_sent and not self._outbox and not self._jobs \
                        and not self._batches:
                    self._stops_sent = True
                    for _ in range(self._processes):
                        self._tasks.put(STOP)
                if busy:
                    backoff.reset()
                    continue
                # sleep with backoff, capped by how soon something is due: tasks held back for a
                # result, results of short frames, results of long ones, or only new submissions
                # (which wake the pump, as do close(), terminate() and the monitor)
                if self._batches:
                    cap = 5e-5 if self._outbox else (2.5e-4 if self._short_frames else 2e-3)
                else:
                    cap = 2e-2
                backoff.maximum = cap
                backoff.delay = min(backoff.delay, cap)
                backoff.pause(sleep=self._nap)
        except Exception as exc:
            if self._state != TERMINATE:
                self._broken("pump", exc)

    def _nap(self, delay: float) -> None:
        """The pump's sleep: ``delay`` seconds at most, cut short by :meth:`_poke`."""
        self._sleeping = True
        self._wake.clear()
        if self._state != TERMINATE and not (self._outbox and len(self._batches) < self._max_frames):
            self._wake.wait(delay)
        self._sleeping = False

    def _broken(self, thread: str, exc: Exception) -> None:
        """A service thread failed (a bug or a broken queue): fail every pending result rather than hang.

        Every later call raises BrokenPool too, and the workers are stopped.
        """
        log.error("Pool: the pool's %s thread failed", thread, exc_info=exc)
        with self._lock:
            if self._broken_by is None:
                self._broken_by = f"the pool's {thread} thread failed ({type(exc).__name__}: {exc})"
        error = BrokenPool(f"the pool can no longer move tasks: {self._broken_by}")
        jobs, self._jobs = dict(self._jobs), {}
        for job in jobs.values():
            job._fail(error)
        threading.Thread(target=self.terminate, daemon=True, name="mpigroup-pool-terminate").start()

    def _send(self) -> None:
        """Send frames while fewer than ``_max_frames`` are unanswered: while every worker has a frame
        running and one waiting, tasks wait in the outbox, where they make larger frames."""
        from ..sync import serialize  # initialises MPI: see the module docstring

        while self._outbox and len(self._batches) < self._max_frames:
            records = self._planner.take(self._outbox, self._in_flight)
            batch_id = next(self._batch_ids)
            key, fn_bytes = records[0][2], records[0][3]
            tasks = [(job, index, key, kind, payload if len(payload) < _INLINE_BYTES else pickle.PickleBuffer(payload))
                     for job, index, key, _, kind, payload, _ in records]
            self._batches[batch_id] = records
            self._in_flight += len(records)
            per = self._planner.estimate(key)
            self._short_frames = per is not None and per * sum(r[6] for r in records) < 5e-3
            self._tasks._put_pieces(serialize.dumps((batch_id, {key: fn_bytes}, tasks), plain=True))

    def _receive(self, batch_id: int, results: list, seconds: float) -> None:
        records = self._batches.pop(batch_id, None)
        if records is not None:
            self._in_flight -= len(records)
            self._planner.observe(records[0][2], sum(r[6] for r in records), seconds)
        for job_id, index, ok, value in results:
            self._settle(job_id, index, ok, value)

    def _settle(self, job_id: int, index: int, ok: bool, value: Any) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job._set(index, ok, value):
            self._jobs.pop(job_id, None)

    def _bury(self) -> None:
        """Tasks of dead workers: fail those that ran or whose result was lost, send the others again."""
        while self._deaths:
            slot, st, value = self._deaths.popleft()
            batch_id, position = divmod(value - 1, SLOT_BATCH)
            records = self._batches.pop(batch_id, None)
            if records is None:
                continue  # its results arrived
            self._in_flight -= len(records)
            who = f"pool worker {slot} (puid {st.puid}, pid {st.pid}, host {st.host}) exited with code {st.exitcode}"
            for i, (job_id, index, *_) in enumerate(records[:position + 1]):
                what = "while running" if i == position else "after running (its result was lost with it)"
                error = WorkerLostError(f"{who} {what} task {index} of job {job_id}")
                remote = RemoteError("WorkerLostError", str(error), _lost_traceback(st), puid=st.puid,
                                     rank=slot, host=st.host)
                self._settle(job_id, index, False, (error, remote))
            self._outbox.extendleft(reversed(records[position + 1:]))  # never started: run them elsewhere

    # ---------------------------------------------------------- submission
    def _check_running(self) -> None:
        """ValueError once closed or terminated (as multiprocessing), BrokenPool once broken."""
        if self._broken_by is not None:
            raise BrokenPool(f"the pool can no longer run tasks: {self._broken_by}")
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _function(self, func: Callable) -> tuple[int, bytes]:
        """(key, pickled bytes) of ``func``; a plain function or builtin is pickled once per pool."""
        stable = isinstance(func, (types.FunctionType, types.BuiltinFunctionType)) and \
            not getattr(func, "__closure__", None)
        if stable:
            hit = self._functions.get(id(func))
            if hit is not None and hit[0] is func:
                self._last_function = hit
                return hit[1], hit[2]
        data = _pickled(func, "function")
        with self._fn_lock:
            key = self._fn_keys.get(data)
            if key is None:
                if len(self._fn_keys) > 256:
                    self._fn_keys.clear()  # keys are never reused, so workers' caches stay right
                key = self._fn_keys[data] = next(self._fn_ids)
            if stable:
                if len(self._functions) > 64:
                    self._functions.pop(next(iter(self._functions)))
                self._functions[id(func)] = self._last_function = (func, key, data)
        return key, data

    def _submit(self, func: Callable, kind: str, payloads: list, result: Any) -> Any:
        self._check_running()
        key, fn_bytes = self._function(func)
        job_id = next(self._job_ids)
        records = [(job_id, index, key, fn_bytes, kind, _pickled(p, "arguments"), len(p))
                   for index, p in enumerate(payloads)]
        if records:
            self._jobs[job_id] = result
            self._outbox.extend(records)
            self._poke()
        return result

    def apply_async(self, func: Callable, args: Sequence[Any] = (), kwds: Optional[dict] = None,
                    callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> ApplyResult:
        if self._state != RUN:
            self._check_running()
        last = self._last_function
        key, fn_bytes = last[1:] if last[0] is func else self._function(func)
        payload = (tuple(args), dict(kwds) if kwds else {})
        try:  # the common case inline: stdlib pickle, nothing from __main__ (one task per call matters)
            data = pickle.dumps(payload, 5)
            if b"__main__" in data:
                raise pickle.PicklingError("by value")
        except Exception:
            data = _pickled(payload, "arguments")
        result = ApplyResult(callback, error_callback, self._cause)
        job_id = next(self._job_ids)
        self._jobs[job_id] = result
        self._outbox.append((job_id, 0, key, fn_bytes, "call", data, 1))
        if self._sleeping:
            self._wake.set()
        return result

    def apply(self, func: Callable, args: Sequence[Any] = (), kwds: Optional[dict] = None) -> Any:
        return self.apply_async(func, args, kwds).get()

    def _chunks(self, iterable: Iterable, chunksize: Optional[int]) -> list[list]:
        items = iterable if isinstance(iterable, (list, tuple)) else list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            chunksize += bool(extra)
        elif chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, got {chunksize}")
        chunksize = max(1, int(chunksize))
        return [list(items[i:i + chunksize]) for i in range(0, len(items), chunksize)]

    def map_async(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None,
                  callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> MapResult:
        self._check_running()
        chunks = self._chunks(iterable, chunksize)
        return self._submit(func, "map", chunks, MapResult(len(chunks), callback, error_callback, self._cause))

    def map(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None) -> list:
        return self.map_async(func, iterable, chunksize).get()

    def starmap_async(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None,
                      callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> MapResult:
        self._check_running()
        chunks = self._chunks(iterable, chunksize)
        return self._submit(func, "starmap", chunks, MapResult(len(chunks), callback, error_callback, self._cause))

    def starmap(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None) -> list:
        return self.starmap_async(func, iterable, chunksize).get()

    def imap(self, func: Callable, iterable: Iterable, chunksize: int = 1) -> Iterator:
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func: Callable, iterable: Iterable, chunksize: int = 1) -> Iterator:
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(self, func: Callable, iterable: Iterable, chunksize: int, ordered: bool) -> IMapIterator:
        """The input is consumed in the caller if it has a length, else by a thread, as it yields."""
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, got {chunksize}")
        key, fn_bytes = self._function(func)
        job_id = next(self._job_ids)
        result = self._jobs[job_id] = IMapIterator(ordered, self._cause)
        args = (job_id, result, iterable, chunksize, key, fn_bytes)
        if hasattr(iterable, "__len__"):
            self._feed(*args)
        else:
            threading.Thread(target=self._feed, args=args, daemon=True, name="mpigroup-pool-imap").start()
        return result

    def _feed(self, job_id: int, result: IMapIterator, iterable: Iterable, chunksize: int, key: int,
              fn_bytes: bytes) -> None:
        index = 0
        try:
            source = iter(iterable)
            while self._state == RUN:
                chunk = list(itertools.islice(source, chunksize))
                if not chunk:
                    break
                self._outbox.append((job_id, index, key, fn_bytes, "map", _pickled(chunk, "arguments"), len(chunk)))
                index += 1
                self._poke()
        except Exception as exc:  # raised by next() where its chunk would have been
            result._set(index, False, (exc, None))
            index += 1
        if result._set_length(index):
            self._jobs.pop(job_id, None)

    # ----------------------------------------------------------- lifecycle
    def close(self) -> None:
        """No more tasks; the workers exit once every task given so far has its result."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE
        self._poke()

    def terminate(self) -> None:
        """Stop every worker now; outstanding results raise PoolTerminated."""
        with self._lock:
            if self._state == TERMINATE or self._state is None:
                return
            self._state = TERMINATE
            workers = dict(self._workers)
            self._workers.clear()
        self._poke()
        self._wait_booted(workers)
        groups = {id(g): g for g, _ in workers.values()}
        for group in groups.values():
            try:
                group.kill()
            except Exception:
                pass
        for t in self._threads:
            t.join(timeout=5)
        jobs, self._jobs = dict(self._jobs), {}
        self._outbox.clear()
        self._batches.clear()
        if self._broken_by is not None:  # tasks given while the pool was breaking
            err: Exception = BrokenPool(f"the pool can no longer move tasks: {self._broken_by}")
        else:
            err = PoolTerminated("the pool was terminated before this result arrived")
        for job in jobs.values():
            job._fail(err)
        for group in groups.values():
            try:
                group.join(timeout=10)
            except Exception:
                pass

    def _wait_booted(self, workers: dict, timeout: float = 30.0) -> None:
        """Let workers that are still joining the universe finish joining before they are killed.

        A process killed between its spawn and its universe join would leave
        the head waiting for it in ``MPI_Comm_accept``, which has no timeout.
        """
        deadline = deadline_after(timeout)
        booting = {slot: puid for slot, (_, puid) in workers.items() if self._slots[slot] == BOOTING}
        while booting and not expired(deadline):
            statuses = context.current().api.call(Op.STATUS, puids=list(booting.values()))
            booting = {slot: puid for (slot, puid), st in zip(booting.items(), statuses)
                       if not st.exited and self._slots[slot] == BOOTING}
            if booting:
                time.sleep(0.01)

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the workers to exit (after close() or terminate())."""
        if self._state == RUN:
            raise ValueError("Pool is still running: call close() or terminate() first")
        deadline = deadline_after(timeout)
        while True:
            with self._lock:
                pending = bool(self._workers) or (self._state == CLOSE and bool(self._jobs))
            if not pending or self._state == TERMINATE:
                break
            if expired(deadline):
                raise TimeoutError(f"pool workers still running after {timeout} s")
            time.sleep(0.02)
        if self._state == CLOSE:
            self._state = TERMINATE  # stops the helper threads
            for t in self._threads:
                t.join(timeout=5)

    def __enter__(self) -> "Pool":
        self._check_running()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.terminate()

    def __del__(self, _warn: Callable = warnings.warn) -> None:
        if getattr(self, "_state", None) == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}", ResourceWarning, source=self)

    def __repr__(self) -> str:
        state = getattr(self._state, "value", self._state)  # a plain "RUN" too, as multiprocessing's tests set
        return f"<mpigroup.Pool state={state} pool_size={self._processes}>"
