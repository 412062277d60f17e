"""PoolExecutor: a ``concurrent.futures.Executor`` over the Pool machinery."""
from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from ..base.waiting import deadline_after, remaining
from ..policy import Policy
from .pool import Pool


def _call_chunk(fn: Callable, chunk: list) -> list:
    return [fn(*args) for args in chunk]


class PoolExecutor(cf.Executor):
    """``PoolExecutor(max_workers=None, *, policy=None, processes_per_policy=None, initializer=None,
    initargs=(), max_tasks_per_child=None)``: ``submit``, ``map``, ``shutdown(wait, cancel_futures)``."""

    def __init__(self, max_workers: Optional[int] = None, *, policy: Policy | Sequence[Policy] | None = None,
                 processes_per_policy: Optional[int] = None, initializer: Optional[Callable] = None,
                 initargs: Sequence[Any] = (), max_tasks_per_child: Optional[int] = None) -> None:
        self._pool = Pool(max_workers, initializer, initargs, max_tasks_per_child, policy=policy,
                          processes_per_policy=processes_per_policy)
        self._futures: set[cf.Future] = set()
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> cf.Future:
        with self._lock:
            if self._shutdown:
                # a plain RuntimeError, not an MPIGroupError: code written for
                # concurrent.futures (ProcessPoolExecutor raises this) catches exactly it
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: cf.Future = cf.Future()
            self._futures.add(future)

        def done(value: Any) -> None:
            self._settle(future, value, None)

        def failed(exc: BaseException) -> None:
            self._settle(future, None, exc)

        try:
            self._pool.apply_async(fn, args, kwargs, callback=done, error_callback=failed)
        except BaseException:
            with self._lock:
                self._futures.discard(future)
            raise
        return future

    def _settle(self, future: cf.Future, value: Any, exc: Optional[BaseException]) -> None:
        with self._lock:
            self._futures.discard(future)
        if future.cancelled() or not future.set_running_or_notify_cancel():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)

    def map(self, fn: Callable, *iterables: Iterable, timeout: Optional[float] = None,
            chunksize: int = 1) -> Iterator:
        """Results in order; ``chunksize`` > 1 sends that many calls per task."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        deadline = deadline_after(timeout)
        calls = list(zip(*iterables))
        chunks = [calls[i:i + chunksize] for i in range(0, len(calls), chunksize)]
        futures = [self.submit(_call_chunk, fn, chunk) for chunk in chunks]

        def results() -> Iterator:
            try:
                for future in futures:
                    yield from future.result(remaining(deadline))
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; ``cancel_futures`` cancels every future not yet finished.

        Cancelled tasks may still run in a worker (the task queue is shared
        memory, not a list we can edit); their results are dropped, and the
        workers are stopped as soon as the remaining futures are done.
        """
        with self._lock:
            self._shutdown = True
            pending = list(self._futures)
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            cf.wait([f for f in pending if not f.cancelled()])
            if cancel_futures:
                self._pool.terminate()
            else:
                self._pool.close()
                self._pool.join()
        else:
            self._pool.close()
