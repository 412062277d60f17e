"""Queue, JoinableQueue and SimpleQueue: ``multiprocessing``'s queues over a :class:`~.ring.Ring`.

Each queue is one ring of the arena (see :mod:`mpigroup.sync.ring` for the
layout and the locking). As in multiprocessing, ``Queue.put`` hands a frame
that does not fit at once to a feeder thread, so ``put`` never blocks on a
missing consumer; the frame is pickled in ``put`` itself, so errors raise in
the caller. Objects whose out-of-band buffers (numpy arrays) are modified
after ``put`` returns and before the feeder wrote them are sent modified, as
with multiprocessing.
"""
from __future__ import annotations

import collections
import logging
import queue as _stdqueue
import threading
import time
from typing import Any, Optional

from ..base import shutdown
from ..base.shutdown import Stage
from ..base.waiting import deadline_for, expired, remaining
from ..errors import QueueBroken
from . import rma, serialize, universe
from .ring import COUNT, FAST_BYTES, UNFINISHED, Ring

__all__ = ["JoinableQueue", "Queue", "QueueBroken", "SimpleQueue", "flush_all"]

log = logging.getLogger(__name__)


class _QueueBase(Ring):
    """What the queues share: ``get`` of one pickled object."""

    def _get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        body = self.receive(deadline_for(block, timeout))
        if body is None:
            raise _stdqueue.Empty
        return serialize.loads(body)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at arena+{self._offset} maxsize={self._maxsize}>"


class Queue(_QueueBase):
    """``multiprocessing.Queue`` over RMA: ``Queue(maxsize=0, *, capacity=4 MiB)``."""

    def __init__(self, maxsize: int = 0, *, capacity: Optional[int] = None, ctx: Any = None) -> None:
        super().__init__(maxsize, capacity)

    def _setup(self, capacity: int, maxsize: int) -> None:
        super()._setup(capacity, maxsize)
        self._buffer: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._feeder: Optional[threading.Thread] = None
        self._last_feeder: Optional[threading.Thread] = None  # joined by _flush
        self._joincancelled = False
        self._broken: Optional[QueueBroken] = None  # set when this process found the ring dead

    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")
        self._put_pieces(serialize.dumps(obj), block, timeout)

    def _put_pieces(self, pieces: list, block: bool = True, timeout: Optional[float] = None) -> None:
        """``put`` of an already serialized frame (``serialize.dumps``)."""
        size = serialize.frame_size(pieces)
        counted = self._maxsize > 0
        self._count_task()
        try:
            if counted and not self._reserve_slot(deadline_for(block, timeout)):
                raise _stdqueue.Full
        except BaseException:
            self._count_task(-1)
            raise
        # Fits at once: no feeder thread involved. An empty buffer means the feeder has written
        # everything this process put before (it drops a frame only once it is in the ring).
        if size <= FAST_BYTES and not self._buffer and self._try_put_small(pieces, size, count=not counted):
            return
        with self._cond:
            if not self._buffer and size <= FAST_BYTES:  # room may have come meanwhile
                if self._try_put_small(pieces, size, count=not counted):
                    return
            if self._feeder is None:  # slow path: is the ring dead? (a dead ring's locks stay held)
                self._check_broken(counted)
            if not counted:
                self._adjust(COUNT, 1)
            self._buffer.append(pieces)
            if self._feeder is None:  # started per backlog; holds the queue until it is written
                _backlogged.add(self)
                self._feeder = threading.Thread(target=self._feed, name="mpigroup-queue-feeder", daemon=True)
                self._last_feeder = self._feeder
                self._feeder.start()

    def _check_broken(self, counted: bool) -> None:
        """QueueBroken (undoing this put's counts) if the ring is known or found to be dead."""
        if self._broken is None:
            try:
                self._find_broken()
            except QueueBroken as exc:
                self._broken = exc
        if self._broken is not None:
            self._count_task(-1)
            if counted:
                self._adjust(COUNT, -1)
            raise QueueBroken(str(self._broken))

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
        """Feeder thread: streams buffered frames into the ring, oldest first, then ends.

        On QueueBroken it stops at once and drops what it holds (nothing can
        ever be written again), so exiting never waits for it.
        """
        while True:
            with self._cond:
                if not self._buffer:
                    self._stop_feeding()
                    return
                pieces = self._buffer[0]
            try:
                self._put_now(pieces, None)
            except QueueBroken as exc:
                with self._cond:
                    self._broken = exc
                    log.warning("queue feeder stopped, %d item(s) put by this process dropped: %s",
                                len(self._buffer), exc)
                    self._buffer.clear()
                    self._stop_feeding()
                return
            except Exception as exc:  # e.g. the queue was destroyed meanwhile
                log.error("queue feeder dropped an item of %r: %s", self, exc, exc_info=True)
            with self._cond:
                self._buffer.popleft()

    def _stop_feeding(self) -> None:
        """The feeder ends (caller holds ``_cond``)."""
        self._feeder = None
        _backlogged.discard(self)
        self._cond.notify_all()

    def _flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until the feeder has written (or dropped) what it holds and ended; False on timeout."""
        deadline = deadline_for(True, timeout)
        with self._cond:
            while self._feeder is not None:
                if expired(deadline):
                    return False
                self._cond.wait(0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic())))
            thread = self._last_feeder
        if thread is not None and thread is not threading.current_thread():
            thread.join(remaining(deadline))  # it has only its return left
        return True



class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: adds ``task_done`` and ``join``."""

    def _count_task(self, delta: int = 1) -> None:
        self._adjust(UNFINISHED, delta)

    def task_done(self) -> None:
        uni = universe.current()
        with uni.lock:
            while True:
                n = rma.load(uni, self._word(UNFINISHED))
                if n <= 0:
                    raise ValueError("task_done() called too many times")
                if rma.cas(uni, self._word(UNFINISHED), n, n - 1) == n:
                    rma.notify(uni, self._bell)  # join() may be over
                    return

    def join(self, timeout: Optional[float] = None) -> None:
        """Block until every item put has been marked done (TimeoutError after ``timeout``)."""
        deadline, wait, checked = deadline_for(True, timeout), universe.waiter(self._bell), time.monotonic()
        while True:
            uni = universe.current()
            with uni.lock:
                if rma.load(uni, self._word(UNFINISHED)) <= 0:
                    return
            if expired(deadline):
                raise TimeoutError(f"JoinableQueue.join() timed out after {timeout} s")
            if time.monotonic() - checked >= 1.0:  # the items of a broken queue are never done
                checked = time.monotonic()
                self._find_broken()
            wait.pause(deadline)


class SimpleQueue(_QueueBase):
    """``multiprocessing.SimpleQueue``: no feeder thread, ``put`` writes directly."""

    def __init__(self, *, capacity: Optional[int] = None, ctx: Any = None) -> None:
        super().__init__(0, capacity)

    def put(self, obj: Any, timeout: Optional[float] = None) -> None:
        if self._closed:
            raise ValueError(f"SimpleQueue {self!r} is closed")
        pieces = serialize.dumps(obj)
        self._adjust(COUNT, 1)
        self._put_now(pieces, deadline_for(True, timeout))

    def get(self, timeout: Optional[float] = None) -> Any:
        if self._closed:
            raise ValueError(f"SimpleQueue {self!r} is closed")
        return self._get(True, timeout)

    def close(self) -> None:
        self._closed = True


_backlogged: "set[Queue]" = set()  # queues with a running feeder (kept alive by it)


def flush_all(timeout: float = 60.0) -> None:
    """Flush every feeder of this process (exit path), except cancelled ones.

    As ``multiprocessing`` joins its feeders at exit, this waits for as long as
    the readers take frames; it gives up only on a feeder that has written
    nothing for ``timeout`` seconds (its readers are gone), so a slow reader
    never costs data, and a missing one never hangs the exit.
    """
    for q in list(_backlogged):
        if q._joincancelled:
            continue
        left, idle_since = len(q._buffer), time.monotonic()
        while not q._flush(1.0):
            now = len(q._buffer)
            if now < left:
                left, idle_since = now, time.monotonic()
            elif time.monotonic() - idle_since > timeout:
                log.warning("gave up flushing %r after %.0f s without progress (%d frame(s) left)",
                            q, timeout, now)
                break


shutdown.register(Stage.FLUSH, "mpigroup.sync.queues", lambda timeout=60.0: flush_all(timeout), priority=10)
