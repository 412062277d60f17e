"""Pool: ``multiprocessing.pool.Pool`` over mpigroup workers placed by policy.

Design:

* Workers are mpigroup processes running :func:`.worker.run_worker`, spawned
  as one ProcessGroup (one spawn, one universe step) with each worker's own
  placement policy; replacements (``maxtasksperchild``, dead workers) are
  single processes.
* Tasks go through one shared :class:`mpigroup.Queue` (work sharing), results
  come back through another; both live in MPI RMA windows.
* Each worker records the task it runs in its slot of a shared array. A
  monitor thread polls the head's process table; when a worker exits while a
  slot names a task, that task's result raises :class:`WorkerLostError` (in
  the spirit of loky's ``TerminatedWorkerError``) and a replacement starts.
  The pool never waits on a task whose worker is gone.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import cloudpickle

from ..errors import MPIGroupError, RemoteError
from ..policy import Policy
from .worker import STOP, run_worker


class WorkerLostError(MPIGroupError):
    """A pool worker died (or exited) while it ran this task."""


class PoolTerminated(MPIGroupError):
    """The pool was terminated before this task's result arrived."""


_RUN, _CLOSE, _TERMINATE = "running", "closed", "terminated"


def _raise_remote(value: tuple) -> None:
    exc, remote = value
    if isinstance(exc, BaseException):
        raise exc from remote
    raise remote


class ApplyResult:
    """``multiprocessing.pool.AsyncResult``: ``get(timeout)``, ``wait``, ``ready``, ``successful``."""

    def __init__(self, pool: "Pool", chunks: int, callback: Optional[Callable] = None,
                 error_callback: Optional[Callable] = None) -> None:
        self._event = threading.Event()
        self._chunks: list = [None] * chunks
        self._remaining = chunks
        self._error: Optional[tuple] = None
        self._callback, self._error_callback = callback, error_callback
        self._lock = threading.Lock()
        self._arrival = threading.Condition(self._lock)
        self._arrived: list[int] = []  # chunk indexes in arrival order (imap)

    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None

    def wait(self, timeout: Optional[float] = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: Optional[float] = None) -> Any:
        if not self._event.wait(timeout):
            raise TimeoutError(f"result not ready within {timeout} s")
        if self._error is not None:
            _raise_remote(self._error)
        return self._value()

    def _value(self) -> Any:
        return self._chunks[0]

    def _set(self, index: int, ok: bool, value: Any) -> bool:
        """Record one chunk; True when the job is complete."""
        with self._lock:
            if self._event.is_set() or self._chunks[index] is not None and ok:
                return self._event.is_set()
            if ok:
                self._chunks[index] = value
                self._remaining -= 1
                self._arrived.append(index)
            elif self._error is None:
                self._error = value
            self._arrival.notify_all()
            done = self._remaining == 0 or self._error is not None
            if not done:
                return False
        if self._error is None and self._callback is not None:
            self._callback(self._value())
        if self._error is not None and self._error_callback is not None:
            exc, remote = self._error
            self._error_callback(exc if isinstance(exc, BaseException) else remote)
        self._event.set()
        return True


class MapResult(ApplyResult):
    """``map_async``: the chunks' lists, concatenated in order."""

    def _value(self) -> list:
        return [x for chunk in self._chunks for x in chunk]


class IMapIterator:
    """``imap`` (ordered) and ``imap_unordered``: yields items as their chunks arrive."""

    def __init__(self, job: ApplyResult, ordered: bool) -> None:
        self._job = job
        self._ordered = ordered
        self._taken = 0  # chunks yielded so far
        self._buffer: list = []

    def __iter__(self) -> "IMapIterator":
        return self

    def next(self, timeout: Optional[float] = None) -> Any:
        return self.__next__(timeout)

    def __next__(self, timeout: Optional[float] = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self._job
        while not self._buffer:
            with job._arrival:
                while True:
                    if job._error is not None:
                        _raise_remote(job._error)
                    if self._taken == len(job._chunks):
                        raise StopIteration
                    if self._ordered:
                        ready = self._taken if job._chunks[self._taken] is not None else None
                    else:
                        ready = job._arrived[self._taken] if self._taken < len(job._arrived) else None
                    if ready is not None:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError("next item not ready in time")
                    job._arrival.wait(remaining)
            self._taken += 1
            self._buffer = list(job._chunks[ready])
            self._buffer.reverse()
        return self._buffer.pop()


class Pool:
    """``Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None, *, policy=None,
    processes_per_policy=None)``: the ``multiprocessing.pool.Pool`` API over mpigroup workers.

    ``processes`` defaults to the usable CPUs of the whole allocation. With a
    list of policies and ``processes_per_policy=k``, k workers start per
    policy, each bound to its policy's host, CPUs and GPUs.
    """

    def __init__(self, processes: Optional[int] = None, initializer: Optional[Callable] = None,
                 initargs: Sequence[Any] = (), maxtasksperchild: Optional[int] = None, *,
                 policy: Policy | Sequence[Policy] | None = None,
                 processes_per_policy: Optional[int] = None, context: Any = None) -> None:
        from ..sync import Queue
        from ..sync.primitives import SharedWords
        from ..system import cpu_count

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
        self._tasks, self._results = Queue(), Queue()
        self._slots = SharedWords(self._processes)
        self._jobs: dict[int, ApplyResult] = {}
        self._job_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._state = _RUN
        self._workers: dict[int, Any] = {}  # slot -> (Process or ProcessGroup, puid)
        self._stops_sent = 0
        self._start_workers(list(range(self._processes)))
        self._threads = [threading.Thread(target=self._handle_results, daemon=True, name="mpigroup-pool-results"),
                         threading.Thread(target=self._monitor, daemon=True, name="mpigroup-pool-monitor")]
        for t in self._threads:
            t.start()

    # -------------------------------------------------------------- workers
    def _template(self, slot: int):
        from ..group import ProcessTemplate

        return ProcessTemplate(run_worker, args=(self._tasks, self._results, self._slots, slot, self._initializer,
                                                 self._initargs, self._maxtasks),
                               policy=self._placement[slot])

    def _start_workers(self, slots: list[int]) -> None:
        from ..group import ProcessGroup

        group = ProcessGroup(ignore_error_on_exit=True, name="pool")
        for slot in slots:
            self._slots[slot] = 0
            group.add_process(1, self._template(slot))
        group.start()
        for slot, puid in zip(slots, group.puids):
            self._workers[slot] = (group, puid)

    def _monitor(self) -> None:
        """Detect exited workers: fail the task they ran, start replacements."""
        from ..runtime import context

        api = context.current().api
        while self._state != _TERMINATE:
            time.sleep(0.05)
            with self._lock:
                live = {slot: puid for slot, (_, puid) in self._workers.items()}
            if not live:
                if self._state != _RUN:
                    return
                continue
            try:
                statuses = api.call("status", puids=list(live.values()))
            except Exception:
                continue
            exited = [(slot, st) for (slot, _), st in zip(live.items(), statuses) if st["state"] == "exited"]
            if not exited:
                continue
            replace = []
            with self._lock:
                if self._state == _TERMINATE:
                    return
                for slot, st in exited:
                    self._workers.pop(slot, None)
                    running = self._slots[slot]
                    if running:
                        job, index = divmod(running - 1, 1_000_000_000)
                        self._fail(job, index, WorkerLostError(
                            f"pool worker {slot} (puid {st['puid']}, pid {st['pid']}, host {st['host']}) exited with "
                            f"code {st['exitcode']} while running task {index} of job {job}"))
                    stopped = st["exitcode"] == 0 and not running and self._state != _RUN
                    if not stopped and (self._state == _RUN or self._jobs):
                        replace.append(slot)
                if replace:
                    self._start_workers(replace)

    def _fail(self, job_id: int, index: int, error: BaseException) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            if job._set(index, False, (error, RemoteError(type(error).__name__, str(error), "", rank=None))):
                self._jobs.pop(job_id, None)

    def _handle_results(self) -> None:
        import queue

        while self._state != _TERMINATE:
            try:
                job_id, index, ok, value = self._results.get(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:
                if self._state == _TERMINATE:
                    return
                raise
            with self._lock:
                job = self._jobs.get(job_id)
            if job is not None and job._set(index, ok, value):
                with self._lock:
                    self._jobs.pop(job_id, None)

    # ---------------------------------------------------------- submission
    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")

    @staticmethod
    def _pickle_function(func: Callable) -> bytes:
        try:
            return cloudpickle.dumps(func)
        except Exception as exc:
            raise TypeError(f"cannot send {func!r} to the pool's workers: it cannot be pickled ({exc})") from exc

    def _submit(self, func: Callable, kind: str, payloads: list, result: ApplyResult) -> ApplyResult:
        self._check_running()
        fn_bytes = self._pickle_function(func)
        job_id = next(self._job_ids)
        with self._lock:
            self._jobs[job_id] = result
        try:
            for index, payload in enumerate(payloads):
                self._tasks.put((job_id, index, fn_bytes, kind, payload))
        except Exception:
            with self._lock:
                self._jobs.pop(job_id, None)
            raise
        if not payloads:
            result._remaining = 0
            result._event.set()
        return result

    def apply_async(self, func: Callable, args: Sequence[Any] = (), kwds: Optional[dict] = None,
                    callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> ApplyResult:
        return self._submit(func, "call", [(tuple(args), dict(kwds or {}))],
                            ApplyResult(self, 1, callback, error_callback))

    def apply(self, func: Callable, args: Sequence[Any] = (), kwds: Optional[dict] = None) -> Any:
        return self.apply_async(func, args, kwds).get()

    def _chunks(self, iterable: Iterable, chunksize: Optional[int]) -> list[list]:
        items = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            chunksize += bool(extra)
        chunksize = max(1, int(chunksize))
        return [items[i:i + chunksize] for i in range(0, len(items), chunksize)]

    def map_async(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None,
                  callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> MapResult:
        chunks = self._chunks(iterable, chunksize)
        return self._submit(func, "map", chunks, MapResult(self, len(chunks), callback, error_callback))

    def map(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None) -> list:
        return self.map_async(func, iterable, chunksize).get()

    def starmap_async(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None,
                      callback: Optional[Callable] = None, error_callback: Optional[Callable] = None) -> MapResult:
        chunks = self._chunks(iterable, chunksize)
        return self._submit(func, "starmap", chunks, MapResult(self, len(chunks), callback, error_callback))

    def starmap(self, func: Callable, iterable: Iterable, chunksize: Optional[int] = None) -> list:
        return self.starmap_async(func, iterable, chunksize).get()

    def imap(self, func: Callable, iterable: Iterable, chunksize: int = 1) -> Iterator:
        chunks = self._chunks(iterable, chunksize)
        job = self._submit(func, "map", chunks, ApplyResult(self, len(chunks)))
        return IMapIterator(job, ordered=True)

    def imap_unordered(self, func: Callable, iterable: Iterable, chunksize: int = 1) -> Iterator:
        chunks = self._chunks(iterable, chunksize)
        job = self._submit(func, "map", chunks, ApplyResult(self, len(chunks)))
        return IMapIterator(job, ordered=False)

    # ----------------------------------------------------------- lifecycle
    def close(self) -> None:
        """No more tasks; workers exit once the queued ones are done."""
        with self._lock:
            if self._state != _RUN:
                return
            self._state = _CLOSE
            for _ in range(self._processes):
                self._tasks.put(STOP)

    def terminate(self) -> None:
        """Stop every worker now; outstanding results raise PoolTerminated."""
        with self._lock:
            if self._state == _TERMINATE:
                return
            self._state = _TERMINATE
            workers = dict(self._workers)
            self._workers.clear()
            jobs, self._jobs = dict(self._jobs), {}
        groups = {id(g): g for g, _ in workers.values()}
        for group in groups.values():
            try:
                group.kill()
            except Exception:
                pass
        err = PoolTerminated("the pool was terminated before this result arrived")
        for job in jobs.values():
            job._set(0, False, (err, RemoteError("PoolTerminated", str(err), "")))
        for t in self._threads:
            t.join(timeout=5)
        for group in groups.values():
            try:
                group.join(timeout=10)
            except Exception:
                pass

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the workers to exit (after close() or terminate())."""
        if self._state == _RUN:
            raise ValueError("Pool is still running: call close() or terminate() first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = bool(self._workers) or (self._state == _CLOSE and bool(self._jobs))
            if not pending or self._state == _TERMINATE:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"pool workers still running after {timeout} s")
            time.sleep(0.02)
        if self._state == _CLOSE:
            self._state = _TERMINATE  # stops the helper threads
            for t in self._threads:
                t.join(timeout=5)

    def __enter__(self) -> "Pool":
        self._check_running()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.terminate()

    def __repr__(self) -> str:
        return f"<mpigroup.Pool state={self._state} pool_size={self._processes}>"
