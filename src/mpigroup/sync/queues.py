"""Queue, JoinableQueue and SimpleQueue in the arena: a byte ring over MPI RMA.

Layout of one queue (int64 words after the common header, then the ring):
``wpos, rpos, count, unfinished, capacity, maxsize``. ``wpos``/``rpos``
count bytes ever written/read (frames are padded to 8 bytes) and their bit 0
is the lock of that side: one producer at a time locks ``wpos`` and streams
its frame in as space frees, one consumer at a time locks ``rpos`` and
streams it out, so frames of any size pass through a ring of any capacity
and each producer's order is kept. Storing the next position publishes it
and unlocks in one atomic write. ``count`` is the
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
from typing import Any, Callable, Optional

import numpy as np

from ..base import shutdown
from ..base.shutdown import Stage

from . import rma, serialize
from . import universe as U

WPOS, RPOS, COUNT, UNFINISHED, CAPACITY, MAXSIZE, OWNER_W, OWNER_R = range(8)
_OWNER = {WPOS: OWNER_W, RPOS: OWNER_R}
DEFAULT_CAPACITY = int(os.environ.get("MPIGROUP_QUEUE_BYTES", str(4 << 20)))
_CHUNK = 256 << 10  # largest single MPI_Put/MPI_Get of a stream: small enough that reader and writer overlap
FAST_BYTES = 1 << 20  # frames up to this size move in one critical section


def _as_bytes(view: memoryview) -> memoryview:
    """A flat byte view of a frame piece (numpy buffers arrive with their own format and shape)."""
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _uninitialized(nbytes: int) -> memoryview:
    """A writable byte buffer that is not zero-filled first (it is about to be overwritten)."""
    return memoryview(np.empty(nbytes, np.uint8))


class QueueBroken(RuntimeError):
    """A process died in the middle of moving a frame through this queue."""


class _HolderWatch:
    """Notices a side lock that keeps one value for a long time (its holder may be dead)."""

    PATIENCE = 5.0  # a fast path holds a lock for microseconds; a streaming holder records its pid

    def __init__(self) -> None:
        self.value: Optional[int] = None
        self.since = 0.0

    def reset(self) -> None:
        self.value = None

    def check(self, ring: "_Ring", side: int) -> None:
        uni = U.current()
        with uni.lock:
            value = rma.load(uni, ring._word(side))
        now = time.monotonic()
        if not value & 1 or value != self.value:
            self.value, self.since = (value if value & 1 else None), now
            return
        if now - self.since > self.PATIENCE:
            ring._recover(side, value)
            self.value = None


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
    _fast_bytes = FAST_BYTES  # frames up to this size are read in one critical section
    _single_reader = False  # True: one process ever reads, so reads take no lock
    _counted = True  # the COUNT word tracks the number of frames (qsize)

    def __init__(self, maxsize: int = 0, capacity: Optional[int] = None) -> None:
        capacity = DEFAULT_CAPACITY if capacity is None else int(capacity)
        if capacity < 64:
            raise ValueError(f"queue capacity must be at least 64 bytes, got {capacity}")
        capacity = (capacity + 7) & ~7
        if maxsize is None or maxsize < 0:
            maxsize = 0
        super().__init__(_extra_bytes=capacity, _init={CAPACITY: capacity, MAXSIZE: int(maxsize)})
        self._setup(capacity, int(maxsize))

    def _setup(self, capacity: int, maxsize: int) -> None:
        self._capacity = capacity
        self._maxsize = maxsize
        self._closed = False
        self._guess = {WPOS: 0, RPOS: 0}  # last position seen: usually right, saves a load

    def _params(self) -> tuple:
        return (self._capacity, self._maxsize)

    def _restore(self, capacity: int, maxsize: int) -> None:
        self._setup(capacity, maxsize)

    # ------------------------------------------------- position-locks
    # WPOS and RPOS hold a byte position (a multiple of 8) whose bit 0 is the
    # lock of that side: taking the lock yields the position, and storing
    # the next position both publishes it and unlocks, in one atomic write.
    def _try_lock(self, uni: U.Universe, side: int) -> Optional[int]:
        """Lock one side (caller holds uni.lock); its position, or None if it is held."""
        word = self._word(side)
        guess = self._guess[side]
        old = rma.cas(uni, word, guess, guess | 1)
        if old == guess:
            return guess
        if old & 1:
            return None
        if rma.cas(uni, word, old, old | 1) == old:
            return old
        return None

    def _lock(self, side: int, deadline: Optional[float]) -> Optional[int]:
        """Take one side for streaming (records this process as the owner)."""
        wait, watch = U.SpinWait(), _HolderWatch()
        while True:
            uni = U.current()
            with uni.lock:
                pos = self._try_lock(uni, side)
                if pos is not None:
                    rma.store(uni, self._word(_OWNER[side]), os.getpid())
                    return pos
            watch.check(self, side)
            if _expired(deadline):
                return None
            wait.pause(deadline)

    def _recover(self, side: int, seen: int) -> None:
        """The lock of ``side`` has held the value ``seen`` for a long time: is its holder dead?

        A holder inside a one-step fast path has no owner recorded and has not
        published anything (publishing and unlocking are one write), so its
        lock is simply released. A streaming holder records its pid; if that
        process is gone mid-frame, the queue cannot be repaired.
        """
        from ..base.procs import pid_alive

        uni = U.current()
        with uni.lock:
            owner = rma.load(uni, self._word(_OWNER[side]))
            if owner == 0:
                rma.cas(uni, self._word(side), seen, seen & ~1)
                return
        if not pid_alive(owner):
            what = "producer" if side == WPOS else "consumer"
            raise QueueBroken(f"{type(self).__name__}: its {what} (pid {owner}) died in the middle of a frame; "
                              "the queue cannot be used any more")

    def _store_pos(self, uni: U.Universe, side: int, pos: int, locked: bool) -> None:
        rma.store(uni, self._word(side), pos | 1 if locked else pos)
        if not locked:
            self._guess[side] = pos

    def _unlock(self, side: int, pos: int) -> None:
        uni = U.current()
        with uni.lock:
            if side == WPOS or not self._single_reader:  # a single reader records no owner
                rma.store(uni, self._word(_OWNER[side]), 0, flush=False)
            self._store_pos(uni, side, pos, locked=False)

    def _other(self, uni: U.Universe, side: int) -> int:
        return rma.load(uni, self._word(WPOS if side == RPOS else RPOS)) & ~1

    # ------------------------------------------------------------ stream
    def _write_frame(self, pieces: list, w: int, stalled: Optional[Callable[[], None]] = None) -> int:
        """Stream a frame in at ``w`` (producer lock held); returns the padded end.

        Each step moves up to ``_CHUNK`` bytes, across piece boundaries, with
        one flush and one published position; the free space is re-read only
        when the part known to be free is used up (it only grows meanwhile).
        ``stalled`` is called whenever the ring is full; it may raise (a dead consumer).
        """
        cap, ring, pos = self._capacity, self._data, w
        views = [_as_bytes(p) for p in pieces]
        index, done, free = 0, 0, 0
        wait = U.SpinWait()
        while index < len(views):
            uni = U.current()
            with uni.lock:
                if free <= 0:
                    free = cap - (pos - self._other(uni, WPOS))
                if free > 0:
                    budget = min(free, _CHUNK)
                    while budget > 0 and index < len(views):
                        piece = views[index]
                        at = pos % cap
                        n = min(budget, piece.nbytes - done, cap - at)
                        if n:
                            rma.put(uni, ring + at, piece[done:done + n])
                        done += n
                        pos += n
                        budget -= n
                        free -= n
                        if done == piece.nbytes:
                            index, done = index + 1, 0
                    rma.flush(uni)
                    self._store_pos(uni, WPOS, pos & ~7, locked=True)  # consumers may follow
                    wait = U.SpinWait()
                    continue
            if stalled is not None:
                stalled()
            wait.pause()
        return (pos + 7) & ~7

    def _read_into(self, out: memoryview, pos: int, stalled: Optional[Callable[[], None]] = None) -> int:
        """Stream bytes out from ``pos`` (consumer lock held); returns the new position.

        The write position is re-read only when the bytes known to be written are used up.
        """
        cap, ring = self._capacity, self._data
        done, written, wait = 0, pos, U.SpinWait()
        while done < out.nbytes:
            uni = U.current()
            with uni.lock:
                if written <= pos:
                    written = self._other(uni, RPOS)
                if written > pos:
                    at = pos % cap
                    n = min(written - pos, out.nbytes - done, cap - at, _CHUNK)
                    rma.get(uni, ring + at, out[done:done + n])
                    rma.flush(uni)
                    done += n
                    pos += n
                    self._store_pos(uni, RPOS, pos & ~7, locked=True)  # space for producers
                    wait = U.SpinWait()
                    continue
            if stalled is not None:
                stalled()
            wait.pause()
        return pos

    def _read_frame(self, r: int, start: memoryview, stalled: Optional[Callable[[], None]] = None
                    ) -> memoryview:
        """Read the frame at ``r`` (consumer lock held) whose first bytes, ``start``
        (at least its 8-byte length, all within the frame), were already read."""
        body = _uninitialized(serialize.body_length(start))
        have = start.nbytes - 8
        body[:have] = start[8:]
        pos = self._read_into(body[have:], r + start.nbytes, stalled)
        self._unlock(RPOS, (pos + 7) & ~7)
        return body

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

    # ------------------------------------------------------- fast paths
    def _try_put_small(self, pieces: list, size: int, count: bool) -> bool:
        """One critical section: lock, write a frame of ``size`` bytes that fits now, publish and unlock."""
        uni = U.current()
        cap = self._capacity
        with uni.lock:
            w = self._try_lock(uni, WPOS)
            if w is None:
                return False
            end = (w + size + 7) & ~7
            if end - self._other(uni, WPOS) > cap:
                self._store_pos(uni, WPOS, w, locked=False)
                return False
            pos = w
            for piece in pieces:
                piece = _as_bytes(piece)
                at, n = pos % cap, piece.nbytes
                first = min(n, cap - at)
                rma.put(uni, self._data + at, piece[:first] if first < n else piece)
                if first < n:
                    rma.put(uni, self._data, piece[first:])
                pos += n
            rma.flush(uni)
            if count:
                rma.add(uni, self._word(COUNT), 1, flush=False)
            self._store_pos(uni, WPOS, end, locked=False)
        return True

    _EMPTY = object()

    def _try_get_small(self) -> Any:
        """One critical section: take a whole frame of up to 64 KiB.

        Returns the frame body, ``_EMPTY``, ``None`` (the consumer lock is
        busy) or ``(r, start)`` for a larger frame: the lock is then held at
        ``r`` and ``start`` holds the frame's first bytes, already read.
        A ring with ``_single_reader`` set skips the consumer lock: its one
        reader always knows the read position.
        """
        uni = U.current()
        cap = self._capacity
        with uni.lock:
            # One atomic read first: our last read position is never ahead of the real
            # one, so if nothing was written past it the ring is empty, and polling an
            # empty ring takes no lock. (Reading both positions in one call was measured
            # 5 us slower per round trip: a two-word Get_accumulate is not a plain atomic.)
            w = self._other(uni, RPOS)
            r = self._guess[RPOS]
            if w - r < 8:
                return self._EMPTY
            if not self._single_reader:  # a ring with one reader knows the position: no lock
                r = self._try_lock(uni, RPOS)
                if r is None:
                    return None
                # w as read above is still a valid bound (frames up to it are complete);
                # anything written since is taken by the next call. Saves an operation.
            avail = w - r
            if avail < 8:
                self._store_pos(uni, RPOS, r, locked=False)
                return self._EMPTY
            at = r % cap
            n = min(avail, cap - at, 4096)
            buf = bytearray(n)
            rma.get(uni, self._data + at, buf)
            rma.flush(uni)
            end = 8 + serialize.body_length(buf)
            if end > n:
                if end > self._fast_bytes or end > avail or at + end > cap:
                    if not self._single_reader:
                        rma.store(uni, self._word(OWNER_R), os.getpid())
                    return (r, memoryview(buf))  # large, incomplete or wrapping: stream the rest
                whole = _uninitialized(end)
                whole[:n] = buf
                rma.get(uni, self._data + at + n, memoryview(whole)[n:])
                rma.flush(uni)
                buf = whole
            if self._counted:
                rma.add(uni, self._word(COUNT), -1, flush=False)
            self._store_pos(uni, RPOS, (r + end + 7) & ~7, locked=False)
        return memoryview(buf)[8:end]

    def _get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        deadline = _deadline(block, timeout)
        wait, watch = U.SpinWait(), _HolderWatch()
        while True:  # the consumer lock is never held while waiting for data
            body = self._try_get_small()
            if isinstance(body, tuple):
                break  # a large frame has arrived and we hold the lock: stream it
            if body is None:
                watch.check(self, RPOS)
            elif body is not self._EMPTY:
                return serialize.loads(body)
            else:
                watch.reset()
            if _expired(deadline):
                raise _stdqueue.Empty
            wait.pause(deadline)
        body = self._read_frame(*body)
        self._adjust(COUNT, -1)
        return serialize.loads(body)

    def _put_now(self, pieces: list, deadline: Optional[float]) -> None:
        w = self._lock(WPOS, deadline)
        if w is None:
            raise TimeoutError("could not obtain the queue's producer lock in time")
        end = w
        try:
            end = self._write_frame(pieces, w)
        finally:
            self._unlock(WPOS, end)

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
        self._put_pieces(serialize.dumps(obj), block, timeout)

    def _put_pieces(self, pieces: list, block: bool = True, timeout: Optional[float] = None) -> None:
        """``put`` of an already serialized frame (``serialize.dumps``)."""
        size = serialize.frame_size(pieces)
        counted = self._maxsize > 0
        self._count_task()
        if counted and not self._reserve_slot(_deadline(block, timeout)):
            self._count_task(-1)
            raise _stdqueue.Full
        with self._cond:
            if not self._buffer and size <= FAST_BYTES:  # fits at once: no feeder thread involved
                if self._try_put_small(pieces, size, count=not counted):
                    return
            if not counted:
                self._adjust(COUNT, 1)
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


shutdown.register(Stage.FLUSH, "mpigroup.sync.queues", lambda timeout=60.0: flush_all(timeout), priority=10)
