"""Result handles of the Pool: ``AsyncResult``, ``MapResult`` and the ``imap`` iterators.

They follow ``multiprocessing.pool``: ``get(timeout)`` raises
:class:`PoolTimeoutError` (both ``multiprocessing.TimeoutError`` and the
builtin ``TimeoutError``), an exception of the task is re-raised with the
remote traceback as its ``__cause__``. Results are set by the pool's one
pump thread; callbacks run there, as they run in multiprocessing's result
handler thread.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from typing import Any, Callable, Optional

from ..errors import RemoteError

log = logging.getLogger(__name__)


class PoolTimeoutError(multiprocessing.TimeoutError, TimeoutError):
    """A result was not ready in time (``multiprocessing.TimeoutError`` and ``TimeoutError``)."""


def _run_callback(fn: Callable, arg: Any) -> None:
    try:
        fn(arg)
    except Exception:  # a failing callback must not stop the pool's pump
        log.error("Pool: exception in a result callback", exc_info=True)


class _Done:
    """A one-shot ``threading.Event`` made of one lock (held until set): a tenth of an Event's cost,
    which matters at one per task."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            self._lock.release()  # the next waiter goes through too
            return True
        return self._set


class ApplyResult:
    """``multiprocessing.pool.AsyncResult``: ``get(timeout)``, ``wait``, ``ready``, ``successful``."""

    __slots__ = ("_event", "_value", "_error", "_callback", "_error_callback", "_cause")

    def __init__(self, callback: Optional[Callable] = None, error_callback: Optional[Callable] = None,
                 cause: Callable = None) -> None:
        self._event = _Done()
        self._value: Any = None
        self._error: Optional[BaseException] = None
        self._callback, self._error_callback = callback, error_callback
        self._cause = cause  # turns a worker's RemoteError into the exception's __cause__

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
            raise PoolTimeoutError(f"result not ready within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def _exception(self, value: tuple) -> BaseException:
        """The exception to raise for a failed task: (exception or None, RemoteError)."""
        exc, remote = value
        if remote is None:  # raised on this side (by the input iterable): as it is
            return exc
        cause = self._cause(remote) if self._cause is not None else remote
        if not isinstance(exc, BaseException):
            return cause
        exc.__cause__ = cause
        return exc

    def _set(self, index: int, ok: bool, value: Any) -> bool:
        """Record the result (``index`` is always 0); True: the job is complete."""
        if self._event.is_set():
            return True
        if ok:
            self._value = value
            if self._callback is not None:
                _run_callback(self._callback, value)
        else:
            self._error = self._exception(value)
            if self._error_callback is not None:
                _run_callback(self._error_callback, self._error)
        self._event.set()
        return True

    def _fail(self, error: BaseException) -> bool:
        """Fail the whole job with a pool-side error (lost worker, terminated pool)."""
        return self._set(0, False, (error, RemoteError(type(error).__name__, str(error), "")))


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """``map_async``: the chunks' lists, concatenated in order; fails with the first failing chunk."""

    __slots__ = ("_chunks", "_remaining", "_lock")

    def __init__(self, chunks: int, callback: Optional[Callable] = None, error_callback: Optional[Callable] = None,
                 cause: Callable = None) -> None:
        super().__init__(callback, error_callback, cause)
        self._chunks: list = [None] * chunks
        self._remaining = chunks
        self._lock = threading.Lock()
        if chunks == 0:
            self._value = []
            self._event.set()

    def _set(self, index: int, ok: bool, value: Any) -> bool:
        with self._lock:
            if self._event.is_set():
                return True
            if ok:
                self._chunks[index] = value
                self._remaining -= 1
                if self._remaining:
                    return False
                self._value = [x for chunk in self._chunks for x in chunk]
                self._chunks = []
        return super()._set(0, ok, value if not ok else self._value)


class IMapIterator:
    """``imap`` (ordered) and ``imap_unordered``: yields items as their chunks arrive.

    The number of chunks is known once the input is consumed; an exception
    raised by the input iterable is raised where its chunk would have been.
    """

    def __init__(self, ordered: bool, cause: Callable = None) -> None:
        self._ordered = ordered
        self._cause = cause
        self._cond = threading.Condition(threading.Lock())
        self._chunks: dict[int, tuple] = {}  # index -> (ok, value) not yet yielded
        self._arrived: list[int] = []  # arrival order (unordered)
        self._length: Optional[int] = None  # chunks in all, once the input is consumed
        self._taken = 0
        self._buffer: list = []
        self._abort: Optional[BaseException] = None

    def __iter__(self) -> "IMapIterator":
        return self

    def _set(self, index: int, ok: bool, value: Any) -> bool:
        with self._cond:
            self._chunks[index] = (ok, value)
            self._arrived.append(index)
            self._cond.notify_all()
            return self._length is not None and len(self._arrived) >= self._length

    def _set_length(self, length: int) -> bool:
        with self._cond:
            self._length = length
            self._cond.notify_all()
            return len(self._arrived) >= length

    def _fail(self, error: BaseException) -> bool:
        """A pool-side failure (terminate): raised by the next call that finds no item ready."""
        with self._cond:
            self._abort = error
            self._cond.notify_all()
        return True

    def next(self, timeout: Optional[float] = None) -> Any:
        return self.__next__(timeout)

    def __next__(self, timeout: Optional[float] = None) -> Any:
        if self._buffer:
            return self._buffer.pop()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._length is not None and self._taken >= self._length:
                    raise StopIteration
                if self._ordered:
                    index = self._taken if self._taken in self._chunks else None
                else:
                    index = self._arrived[self._taken] if self._taken < len(self._arrived) else None
                if index is not None:
                    break
                if self._abort is not None:
                    raise self._abort
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PoolTimeoutError("next item not ready in time")
                self._cond.wait(remaining)
            ok, value = self._chunks.pop(index)
            self._taken += 1
        if not ok:
            raise ApplyResult._exception(self, value)  # type: ignore[arg-type]
        self._buffer = list(value)
        self._buffer.reverse()
        if not self._buffer:
            return self.__next__(timeout)
        return self._buffer.pop()
