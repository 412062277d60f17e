"""Queue, JoinableQueue and SimpleQueue in the arena: a byte ring over MPI RMA.

Layout of one queue (int64 words after the common header, then the ring):
``put_lock, get_lock, write_pos, read_pos, count, unfinished, capacity,
maxsize``. ``write_pos``/``read_pos`` count bytes ever written/read; the
ring holds frames (:mod:`.serialize`). One producer at a time holds
``put_lock`` and streams its frame in as space frees, one consumer at a time
holds ``get_lock`` and streams it out, so frames of any size pass through a
ring of any capacity and each producer's order is kept. ``count`` is the
number of items put and not yet got (``qsize``, ``maxsize``).

As in multiprocessing, ``Queue.put`` hands a frame that does not fit at once
to a feeder thread, so ``put`` never blocks on a missing consumer; the frame
is pickled in ``put`` itself, so errors raise in the caller. Objects whose
out-of-band buffers (numpy arrays) are modified after ``put`` returns and
before the feeder wrote them are sent modified, as with multiprocessing.
"""
from __future__ import annotations

import collections
import os
import queue as _stdqueue
import threading
import time
import weakref
from typing import Any, Optional

from . import rma, serialize
from . import universe as U

PUT_LOCK, GET_LOCK, WRITE_POS, READ_POS, COUNT, UNFINISHED, CAPACITY, MAXSIZE = range(8)
DEFAULT_CAPACITY = int(os.environ.get("MPIGROUP_QUEUE_BYTES", str(4 << 20)))
_CHUNK = 1 << 20  # largest single MPI_Put/MPI_Get of a stream


def _token() -> int:
    return (os.getpid() << 22) | (threading.get_ident() & 0x3FFFFF) | 1


def _deadline(block: bool, timeout: Optional[float]) -> Optional[float]:
    if not block:
        return time.monotonic()
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return time.monotonic() + timeout


def _expired(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class _Ring(rma.SharedObject):
    """The shared state and the ring operations; the public classes add API."""

    _words = 8

    def __init__(self, maxsize: int = 0, capacity: Optional[int] = None) -> None:
        capacity = DEFAULT_CAPACITY if capacity is None else int(capacity)
        if capacity < 64:
            raise ValueError(f"queue capacity must be at least 64 bytes, got {capacity}")
        if maxsize is None or maxsize < 0:
            maxsize = 0
        super().__init__(_extra_bytes=capacity, _init={CAPACITY: capacity, MAXSIZE: int(maxsize)})
        self._setup(capacity, int(maxsize))

    def _setup(self, capacity: int, maxsize: int) -> None:
        self._capacity = capacity
        self._maxsize = maxsize
        self._closed = False

    def _params(self) -> tuple:
        return (self._capacity, self._maxsize)

    def _restore(self, capacity: int, maxsize: int) -> None:
        self._setup(capacity, maxsize)

    # ------------------------------------------------------------- locks
    def _acquire(self, word: int, deadline: Optional[float]) -> bool:
        token, wait = _token(), U.SpinWait()
        while True:
            uni = U.current()
            with uni.lock:
                if rma.cas(uni, self._word(word), 0, token) == 0:
                    return True
            if _expired(deadline):
                return False
            wait.pause(deadline)

    def _release(self, word: int) -> None:
        uni = U.current()
        with uni.lock:
            rma.store(uni, self._word(word), 0)

    # ------------------------------------------------------------ stream
    def _write_frame(self, pieces: list, deadline: Optional[float] = None, *, whole: bool = False) -> bool:
        """Write one frame (caller holds put_lock). ``whole``: only if it fits now."""
        cap, ring = self._capacity, self._data
        total = serialize.frame_size(pieces)
        if total <= 65536 and len(pieces) > 1:
            pieces = [memoryview(b"".join(pieces))]
        wait = U.SpinWait()
        first = True
        for piece in pieces:
            piece = piece.cast("B") if piece.format != "B" or piece.ndim != 1 else piece
            done = 0
            while done < piece.nbytes:
                uni = U.current()
                with uni.lock:
                    w, r = rma.load(uni, self._word(WRITE_POS), 2)
                    free = cap - (w - r)
                    if first and whole and free < total:
                        return False
                    first = False
                    if free > 0:
                        at = w % cap
                        n = min(free, piece.nbytes - done, cap - at, _CHUNK)
                        rma.put(uni, ring + at, piece[done:done + n])
                        rma.flush(uni)
                        rma.add(uni, self._word(WRITE_POS), n)
                        done += n
                        wait = U.SpinWait()
                        continue
                wait.pause()
        return True

    def _read_bytes(self, out: memoryview, first_wait: U.SpinWait) -> None:
        cap, ring = self._capacity, self._data
        done, wait = 0, first_wait
        while done < out.nbytes:
            uni = U.current()
            with uni.lock:
                w, r = rma.load(uni, self._word(WRITE_POS), 2)
                avail = w - r
                if avail > 0:
                    at = r % cap
                    n = min(avail, out.nbytes - done, cap - at, _CHUNK)
                    rma.get(uni, ring + at, out[done:done + n])
                    rma.flush(uni)
                    rma.add(uni, self._word(READ_POS), n)
                    done += n
                    wait = U.SpinWait()
                    continue
            wait.pause()

    def _read_frame(self, deadline: Optional[float]) -> Any:
        """Read one frame (caller holds get_lock); raises queue.Empty if none starts in time."""
        wait = U.SpinWait()
        while True:
            uni = U.current()
            with uni.lock:
                w, r = rma.load(uni, self._word(WRITE_POS), 2)
            if w - r >= 8:
                break
            if _expired(deadline):
                raise _stdqueue.Empty
            wait.pause(deadline)
        prefix = bytearray(8)
        self._read_bytes(memoryview(prefix), wait)
        body = bytearray(serialize.body_length(prefix))
        self._read_bytes(memoryview(body), U.SpinWait())
        return memoryview(body)

    # ---------------------------------------------------------- counting
    def _reserve_slot(self, deadline: Optional[float]) -> bool:
        """count += 1, waiting while the queue is at maxsize."""
        wait = U.SpinWait()
        while True:
            uni = U.current()
            with uni.lock:
                if self._maxsize <= 0:
                    rma.add(uni, self._word(COUNT), 1)
                    return True
                c = rma.load(uni, self._word(COUNT))
                if c < self._maxsize and rma.cas(uni, self._word(COUNT), c, c + 1) == c:
                    return True
            if _expired(deadline):
                return False
            wait.pause(deadline)

    def _adjust(self, word: int, delta: int) -> None:
        uni = U.current()
        with uni.lock:
            rma.add(uni, self._word(word), delta)

    def _try_put_small(self, frame: bytes, count: bool) -> bool:
        """One critical section: lock, write a frame that fits now, publish, unlock."""
        uni = U.current()
        cap, size = self._capacity, len(frame)
        with uni.lock:
            if rma.cas(uni, self._word(PUT_LOCK), 0, _token()) != 0:
                return False
            try:
                w, r = rma.load(uni, self._word(WRITE_POS), 2)
                if cap - (w - r) < size:
                    return False
                at = w % cap
                first = min(size, cap - at)
                rma.put(uni, self._data + at, frame[:first] if first < size else frame)
                if first < size:
                    rma.put(uni, self._data, frame[first:])
                rma.flush(uni)
                if count:
                    rma.add(uni, self._word(COUNT), 1, flush=False)
                rma.add(uni, self._word(WRITE_POS), size)
            finally:
                rma.store(uni, self._word(PUT_LOCK), 0)
        return True

    _EMPTY = object()

    def _try_get_small(self) -> Any:
        """One critical section: take a whole frame of up to 64 KiB; None if the slow path must."""
        uni = U.current()
        cap = self._capacity
        with uni.lock:
            if rma.cas(uni, self._word(GET_LOCK), 0, _token()) != 0:
                return None
            try:
                w, r = rma.load(uni, self._word(WRITE_POS), 2)
                avail = w - r
                if avail < 8:
                    return self._EMPTY
                at = r % cap
                n = min(avail, cap - at, 65536)
                buf = bytearray(n)
                rma.get(uni, self._data + at, buf)
                rma.flush(uni)
                end = 8 + serialize.body_length(buf)
                if end > n:
                    return None
                rma.add(uni, self._word(READ_POS), end, flush=False)
                rma.add(uni, self._word(COUNT), -1)
            finally:
                rma.store(uni, self._word(GET_LOCK), 0)
        return memoryview(buf)[8:end]

    def _get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        deadline = _deadline(block, timeout)
        wait = U.SpinWait()
        while True:
            body = self._try_get_small()
            if body is None:
                break  # the lock is busy or the frame is large: the general path
            if body is not self._EMPTY:
                return serialize.loads(body)
            if _expired(deadline):
                raise _stdqueue.Empty
            wait.pause(deadline)
        if not self._acquire(GET_LOCK, deadline):
            raise _stdqueue.Empty
        try:
            body = self._read_frame(deadline)
        finally:
            self._release(GET_LOCK)
        self._adjust(COUNT, -1)
        return serialize.loads(body)

    def _put_now(self, pieces: list, deadline: Optional[float]) -> None:
        if not self._acquire(PUT_LOCK, deadline):
            raise TimeoutError("could not obtain the queue's producer lock in time")
        try:
            self._write_frame(pieces)
        finally:
            self._release(PUT_LOCK)

    def qsize(self) -> int:
        uni = U.current()
        with uni.lock:
            return max(0, rma.load(uni, self._word(COUNT)))

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    def destroy(self) -> None:
        """Free the queue's arena block now, for every process (later use raises ObjectGone)."""
        self._destroy_block()


class Queue(_Ring):
    """``multiprocessing.Queue`` over RMA: ``Queue(maxsize=0, *, capacity=4 MiB)``."""

    def __init__(self, maxsize: int = 0, *, capacity: Optional[int] = None, ctx: Any = None) -> None:
        super().__init__(maxsize, capacity)

    def _setup(self, capacity: int, maxsize: int) -> None:
        super()._setup(capacity, maxsize)
        self._buffer: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._feeder: Optional[threading.Thread] = None
        self._joincancelled = False

    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        pieces = serialize.dumps(obj)
        self._count_task()
        if self._maxsize <= 0 and not self._buffer:  # unbounded: count and write in one step
            frame = b"".join(pieces) if len(pieces) > 1 else bytes(pieces[0])
            if len(frame) <= 65536 and self._try_put_small(frame, count=True):
                return
            self._adjust(COUNT, 1)
        elif not self._reserve_slot(_deadline(block, timeout)):
            self._count_task(-1)
            raise _stdqueue.Full
        with self._cond:
            if not self._buffer and self._acquire(PUT_LOCK, time.monotonic()):
                try:
                    if self._write_frame(pieces, whole=True):
                        return
                finally:
                    self._release(PUT_LOCK)
            self._buffer.append(pieces)
            if self._feeder is None:  # started per backlog; holds the queue until it is written
                _backlogged.add(self)
                self._feeder = threading.Thread(target=self._feed, name="mpigroup-queue-feeder", daemon=True)
                self._feeder.start()

    def _count_task(self, delta: int = 1) -> None:
        pass

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        return self._get(block, timeout)

    def get_nowait(self) -> Any:
        return self.get(False)

    def close(self) -> None:
        """No more puts from this process; the feeder flushes what it holds."""
        self._closed = True
        with self._cond:
            self._cond.notify()

    def join_thread(self, timeout: Optional[float] = None) -> None:
        """Wait until this process's buffered items are in the queue (after close())."""
        if not self._closed:
            raise AssertionError(f"Queue {self!r} not closed")
        self._flush(timeout)

    def cancel_join_thread(self) -> None:
        self._joincancelled = True

    def _feed(self) -> None:
        """Feeder thread: streams buffered frames into the ring, oldest first, then ends."""
        while True:
            with self._cond:
                if not self._buffer:
                    self._feeder = None
                    _backlogged.discard(self)
                    self._cond.notify_all()
                    return
                pieces = self._buffer[0]
            try:
                self._put_now(pieces, None)
            except Exception as exc:  # e.g. the queue was destroyed meanwhile
                import sys

                print(f"mpigroup: queue feeder dropped an item: {exc}", file=sys.stderr, flush=True)
            with self._cond:
                self._buffer.popleft()

    def _flush(self, timeout: Optional[float] = None) -> bool:
        deadline = _deadline(True, timeout)
        with self._cond:
            while self._feeder is not None:
                if _expired(deadline):
                    return False
                self._cond.wait(0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic())))
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at arena+{self._offset} maxsize={self._maxsize}>"


class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: adds ``task_done`` and ``join``."""

    def _count_task(self, delta: int = 1) -> None:
        self._adjust(UNFINISHED, delta)

    def task_done(self) -> None:
        uni = U.current()
        with uni.lock:
            while True:
                n = rma.load(uni, self._word(UNFINISHED))
                if n <= 0:
                    raise ValueError("task_done() called too many times")
                if rma.cas(uni, self._word(UNFINISHED), n, n - 1) == n:
                    return

    def join(self, timeout: Optional[float] = None) -> None:
        """Block until every item put has been marked done (TimeoutError after ``timeout``)."""
        deadline, wait = _deadline(True, timeout), U.SpinWait()
        while True:
            uni = U.current()
            with uni.lock:
                if rma.load(uni, self._word(UNFINISHED)) <= 0:
                    return
            if _expired(deadline):
                raise TimeoutError(f"JoinableQueue.join() timed out after {timeout} s")
            wait.pause(deadline)


class SimpleQueue(_Ring):
    """``multiprocessing.SimpleQueue``: no feeder thread, ``put`` writes directly."""

    def __init__(self, *, capacity: Optional[int] = None, ctx: Any = None) -> None:
        super().__init__(0, capacity)

    def put(self, obj: Any, timeout: Optional[float] = None) -> None:
        if self._closed:
            raise ValueError(f"SimpleQueue {self!r} is closed")
        pieces = serialize.dumps(obj)
        self._adjust(COUNT, 1)
        self._put_now(pieces, _deadline(True, timeout))

    def get(self, timeout: Optional[float] = None) -> Any:
        if self._closed:
            raise ValueError(f"SimpleQueue {self!r} is closed")
        return self._get(True, timeout)

    def close(self) -> None:
        self._closed = True


_backlogged: "set[Queue]" = set()  # queues with a running feeder (kept alive by it)


def flush_all(timeout: float = 60.0) -> None:
    """Flush every feeder of this process (exit path), except cancelled ones."""
    for q in list(_backlogged):
        if not q._joincancelled:
            q._flush(timeout)

