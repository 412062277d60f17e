"""The byte ring under every Queue and DDict channel: frames of any size through RMA.

Layout of one ring (int64 words after the common header, then the bytes):
``wpos, rpos, count, unfinished, capacity, maxsize, owner_w, owner_r,
sent, taken`` and the ``extra_words`` of a subclass. ``wpos``/``rpos`` count bytes ever
written/read (frames are padded to 8 bytes) and their bit 0 is the lock of
that side: one producer at a time locks ``wpos`` and streams its frame in as
space frees, one consumer at a time locks ``rpos`` and streams it out, so
frames of any size pass through a ring of any capacity and each producer's
order is kept. Storing the next position publishes it and unlocks in one
atomic write. ``count + sent - taken`` is the number of frames sent and not
yet received (``qsize``, ``maxsize``) where the ring counts them: ``count``
is changed with atomics (streams, reservations, the feeder's backlog);
``sent``/``taken`` count one-step puts/gets and are written only by the
holder of that side, so in a shared window they are plain increments.

``owner_w``/``owner_r`` hold the owner ident (:mod:`.owners`: a pid on the
head's host, a puid elsewhere) of a streaming holder of that side (0 for a
one-step fast path). A process that dies while streaming leaves
half a frame: whoever waits on it (a reader waiting for the rest, a writer
waiting for space, anyone waiting for the lock), on any host, finds the holder gone,
marks that owner word ``BROKEN`` and raises :class:`~mpigroup.errors.QueueBroken`;
so does everyone after: a broken ring stays broken. These checks run only
while waiting, never on the fast paths. The exception is a single-reader
ring whose reader drops a dead producer's frame (a DDict manager's request
ring, :meth:`Ring.reader_drops_dead_writer`): there, a producer that dies or
gives up mid-frame costs only its own frame.

A frame is what :func:`mpigroup.sync.serialize.dumps` makes: ``u64`` body
length, then the body. The public API of :class:`Ring` (``send``,
``receive``, ``exists``, ``ref``/``from_ref``, ``load_word``/``store_word``,
``destroy``) is what other packages build on (the DDict's channels); the
``multiprocessing`` queues of :mod:`mpigroup.sync.queues` add their API on top.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..base import config
from ..base.waiting import Backoff, expired, remaining
from ..errors import QueueBroken
from . import owners, relayed, rma, serialize, universe

__all__ = ["Ring", "BROKEN", "FAST_BYTES", "RING_WORDS"]

WPOS, RPOS, COUNT, UNFINISHED, CAPACITY, MAXSIZE, OWNER_W, OWNER_R, SENT, TAKEN = range(10)
RING_WORDS = 10  # state words of every ring; a subclass's extra_words follow
_OWNER = {WPOS: OWNER_W, RPOS: OWNER_R}
_CHUNK = 256 << 10  # largest single MPI_Put/MPI_Get of a stream: small enough that reader and writer overlap
FAST_BYTES = 1 << 20  # frames up to this size move in one critical section
BROKEN = -1  # an owner word's value once its holder died mid-frame: the ring is dead for everyone
ABANDONED = -2  # a producer gave up mid-frame on a ring whose reader drops such frames

Stalled = Optional[Callable[[], None]]


def default_capacity() -> int:
    """The ring size of a queue created without ``capacity`` (``MPIGROUP_QUEUE_BYTES``, default 4 MiB)."""
    return config.get("MPIGROUP_QUEUE_BYTES")


def _park(waiting: Any, deadline: Optional[float]) -> float:
    """How long a step may wait at the head (processes on other hosts): until ``deadline``, once waiting."""
    if not waiting or not universe.is_remote():
        return 0.0
    left = remaining(deadline)
    return relayed.PARK_MAX if left is None else left


def _as_bytes(view: memoryview) -> memoryview:
    """A flat byte view of a frame piece (numpy buffers arrive with their own format and shape)."""
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _uninitialized(nbytes: int) -> memoryview:
    """A writable byte buffer that is not zero-filled first (it is about to be overwritten)."""
    return memoryview(np.empty(nbytes, np.uint8))


class _HolderWatch:
    """Notices a side lock that keeps one value for a while: is its holder dead?

    Used only while waiting. A streaming holder records its pid: once the
    value has not moved for ``LIVENESS`` seconds, that pid is checked (then
    again every ``LIVENESS``). A fast-path holder records none and holds the
    lock for microseconds: after ``PATIENCE`` seconds its lock is released.
    """

    LIVENESS = 0.05
    PATIENCE = 5.0
    READ_EVERY = 1e-3  # a stalled stream polls many times per ms: the lock word is read at most this often

    def __init__(self) -> None:
        self.value: Optional[int] = None
        self.since = self.checked = self.read_at = 0.0

    def reset(self) -> None:
        self.value = None

    def check(self, ring: "Ring", side: int) -> None:
        now = time.monotonic()
        if now < self.read_at:
            return
        self.read_at = now + self.READ_EVERY
        uni = universe.current()
        with uni.lock:
            value = rma.load(uni, ring._word(side))
        if not value & 1 or value != self.value:
            self.value, self.since, self.checked = (value if value & 1 else None), now, now
            return
        if now - self.checked >= self.LIVENESS:
            self.checked = now
            if ring._recover(side, value, force=now - self.since > self.PATIENCE):
                self.value = None


class Ring(rma.SharedObject):
    """A ring of whole frames in the arena: ``Ring(maxsize=0, capacity=None)``; picklable anywhere.

    ``capacity`` is the ring's size in bytes (default ``MPIGROUP_QUEUE_BYTES``);
    frames larger than it stream through. ``maxsize`` (0: none) bounds the
    number of frames a counted ring holds. Subclasses may set:

    * ``single_reader = True``: exactly one process ever receives, so
      receiving takes no lock (a DDict manager's requests, a client's replies);
    * ``counted = False``: the ring does not count its frames (no ``qsize``);
    * ``extra_words``: shared int64 words of their own (:meth:`load_word`);
    * :meth:`reader_drops_dead_writer` (single-reader rings): True where the
      reader clears a producer that died or gave up mid-frame
      (:meth:`drop_dead_writer`), so other producers wait for that instead of
      raising QueueBroken.
    """

    _words = RING_WORDS
    _fast_bytes = FAST_BYTES  # frames up to this size are read in one critical section
    single_reader = False  # True: one process ever reads, so reads take no lock
    counted = True  # COUNT + SENT - TAKEN track the number of frames (qsize)
    extra_words = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._words = RING_WORDS + cls.extra_words

    def __init__(self, maxsize: int = 0, capacity: Optional[int] = None) -> None:
        capacity = default_capacity() if capacity is None else int(capacity)
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
    def _try_lock(self, uni: universe.Universe, side: int) -> Optional[int]:
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

    def _lock(self, side: int, deadline: Optional[float], stalled: Stalled = None) -> Optional[int]:
        """Take one side for streaming (records this process as the owner); ``stalled`` is called while it is held."""
        wait = watch = None  # made on the first miss: the lock is usually free
        while True:
            uni = universe.current()
            with uni.lock:
                pos = self._try_lock(uni, side)
                if pos is not None:
                    rma.store(uni, self._word(_OWNER[side]), owners.me())
                    return pos
            if watch is None:
                wait, watch = universe.waiter(self._bell), _HolderWatch()
            if stalled is not None:
                stalled()
            watch.check(self, side)
            if expired(deadline):
                return None
            wait.pause(deadline)

    def _recover(self, side: int, seen: int, force: bool) -> bool:
        """The lock of ``side`` has held the value ``seen`` for a while: is its holder dead?

        A holder inside a one-step fast path has no owner recorded and has not
        published anything (publishing and unlocking are one write), so its
        lock is released when ``force`` is set; returns True then. A streaming
        holder records its pid; if that process is gone mid-frame, the ring
        cannot be repaired: it is marked ``BROKEN`` and ``QueueBroken`` raised,
        unless the ring's reader drops that frame (:meth:`reader_drops_dead_writer`):
        then the waiter goes on waiting.
        """
        uni = universe.current()
        with uni.lock:
            owner = rma.load(uni, self._word(_OWNER[side]))
            if owner == 0:
                if force:
                    rma.cas(uni, self._word(side), seen, seen & ~1)
                    rma.notify(uni, self._bell)
                return force
        if self._reader_recovers(side, owner):
            return False
        if owner in (BROKEN, ABANDONED) or (owner > 0 and owners.gone(owner, self._holds(side, owner))):
            self._break(side, owner)
        return False

    def _holds(self, side: int, owner: int) -> Callable[[], bool]:
        """A check that ``owner`` still holds ``side`` (for :func:`owners.gone`)."""
        def still() -> bool:
            uni = universe.current()
            with uni.lock:
                return bool(rma.load(uni, self._word(side)) & 1) and rma.load(uni, self._word(_OWNER[side])) == owner
        return still

    def _reader_recovers(self, side: int, owner: int) -> bool:
        """Whether this ring's reader, not QueueBroken, deals with the streaming producer ``owner``."""
        return side == WPOS and owner != BROKEN and self.reader_drops_dead_writer()

    def _break(self, side: int, owner: int) -> None:
        """Mark ``side`` dead (its holder ``owner`` died mid-frame, or this process gives up
        mid-frame) and raise QueueBroken: the lock stays held, so every later user raises too."""
        try:
            uni = universe.current()
            with uni.lock:
                rma.store(uni, self._word(_OWNER[side]), BROKEN)
                rma.notify(uni, self._bell)  # sleepers look again, and find it broken
        except Exception:  # noqa: BLE001 - the universe is going away: nobody will use the ring
            pass
        what = "producer" if side == WPOS else "consumer"
        if owner in (BROKEN, ABANDONED):
            why = f"it is broken (a {what} died or failed in the middle of a frame)"
        elif owner == owners.me():
            why = f"this {what} failed in the middle of a frame"
        else:
            why = f"its {what} ({owners.describe(owner)}) died in the middle of a frame"
        raise QueueBroken(f"{self!r}: {why}; it cannot be used any more")

    def _find_broken(self) -> None:
        """QueueBroken if a side is held by a dead streamer or marked broken (slow paths only)."""
        uni = universe.current()
        for side in (WPOS, RPOS):
            with uni.lock:
                locked = rma.load(uni, self._word(side)) & 1
                owner = rma.load(uni, self._word(_OWNER[side])) if locked else 0
            if self._reader_recovers(side, owner):
                continue
            if owner in (BROKEN, ABANDONED) or (owner > 0 and owners.gone(owner, self._holds(side, owner))):
                self._break(side, owner)

    def _store_pos(self, uni: universe.Universe, side: int, pos: int, locked: bool) -> None:
        """Publish a position (and unlock the side unless ``locked``), then ring the ring's bell.
        Called only by the holder of that side (or a single-reader ring's reader)."""
        rma.publish(uni, self._word(side), pos | 1 if locked else pos)
        rma.notify(uni, self._bell)
        if not locked:
            self._guess[side] = pos

    def _unlock(self, side: int, pos: int) -> None:
        uni = universe.current()
        with uni.lock:
            if side == WPOS or not self.single_reader:  # a single reader records no owner
                rma.store(uni, self._word(_OWNER[side]), 0, flush=False)
            self._store_pos(uni, side, pos, locked=False)

    def _other(self, uni: universe.Universe, side: int) -> int:
        return rma.load(uni, self._word(WPOS if side == RPOS else RPOS)) & ~1

    # ------------------------------------------------------------ stream
    def _stall(self, wait: Optional[Backoff], stalled: Stalled, watch: _HolderWatch, other: int) -> Backoff:
        """A stream cannot move (the ring is full, or the rest of the frame is not written yet): wait.

        ``stalled`` (may raise: the other side is gone) and ``watch`` on the
        ``other`` side's lock (QueueBroken if its streaming holder died) are
        checked first. ``wait`` is None after progress (a new wait starts with
        its spin); returns the wait to pass next time.
        """
        if stalled is not None:
            stalled()
        watch.check(self, other)
        if wait is None:
            wait = universe.waiter(self._bell)
        wait.pause()
        return wait

    def _streaming(self, side: int, step: Callable[..., int], *args: Any) -> int:
        """Run a stream ``step`` while holding ``side``; if it raises, the frame is half
        done: mark the side broken (``QueueBroken`` for everyone after) and re-raise.
        The read side of a single-reader ring records no owner: its one reader decides."""
        try:
            return step(*args)
        except BaseException:
            if side == RPOS and self.single_reader:
                raise
            if side == WPOS and self.reader_drops_dead_writer():
                self._abandon()  # the reader drops this half frame; the ring goes on
                raise
            try:
                self._break(side, owners.me())
            except QueueBroken:
                pass
            raise

    def _abandon(self) -> None:
        """This producer gives up mid-frame: mark it so the reader drops the frame (drop_dead_writer)."""
        try:
            uni = universe.current()
            with uni.lock:
                rma.store(uni, self._word(OWNER_W), ABANDONED)
        except Exception:  # noqa: BLE001 - the universe is going away: nobody will use the ring
            pass

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
        wait: Optional[Backoff] = None  # made when the stream first stalls
        watch = _HolderWatch()  # on the consumers' lock: a reader that died mid-frame never frees space
        while index < len(views):
            uni = universe.current()
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
                    wait = None
                    continue
            wait = self._stall(wait, stalled, watch, RPOS)
        return (pos + 7) & ~7

    def _read_into(self, out: memoryview, pos: int, stalled: Optional[Callable[[], None]] = None) -> int:
        """Stream bytes out from ``pos`` (consumer lock held); returns the new position.

        The write position is re-read only when the bytes known to be written are used up.
        """
        cap, ring = self._capacity, self._data
        done, written = 0, pos
        wait: Optional[Backoff] = None  # made when the stream first stalls
        watch = _HolderWatch()  # on the producers' lock: the writer of this frame may have died
        while done < out.nbytes:
            uni = universe.current()
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
                    wait = None
                    continue
            wait = self._stall(wait, stalled, watch, WPOS)
        return pos

    def _read_frame(self, r: int, start: memoryview, stalled: Optional[Callable[[], None]] = None
                    ) -> memoryview:
        """Read the frame at ``r`` (consumer lock held) whose first bytes, ``start``
        (at least its 8-byte length, all within the frame), were already read."""
        body = _uninitialized(serialize.body_length(start))
        have = start.nbytes - 8
        body[:have] = start[8:]
        pos = self._streaming(RPOS, self._read_into, body[have:], r + start.nbytes, stalled)
        self._unlock(RPOS, (pos + 7) & ~7)
        return body

    # ---------------------------------------------------------- counting
    def _reserve_slot(self, deadline: Optional[float]) -> bool:
        """count += 1, waiting while the queue is at maxsize (QueueBroken if the ring died meanwhile)."""
        wait, checked = universe.waiter(self._bell), time.monotonic()
        while True:
            uni = universe.current()
            with uni.lock:
                if self._maxsize <= 0:
                    rma.add(uni, self._word(COUNT), 1)
                    return True
                c = rma.load(uni, self._word(COUNT))
                # taken only grows meanwhile (a maxsize ring's one-step puts count in COUNT): safe
                held = c + rma.load(uni, self._word(SENT)) - rma.load(uni, self._word(TAKEN))
                if held < self._maxsize and rma.cas(uni, self._word(COUNT), c, c + 1) == c:
                    return True
            if expired(deadline):
                return False
            if time.monotonic() - checked >= _HolderWatch.LIVENESS:  # a dead ring never frees a slot
                checked = time.monotonic()
                self._find_broken()
            wait.pause(deadline)

    def _tally(self, uni: universe.Universe, side_word: int, delta: int) -> None:
        """Count a one-step put (``SENT``, +1) or get (``TAKEN``, -1) by the holder of that side:
        a plain increment of its own word in a shared window, else an atomic add to ``COUNT``."""
        words = uni.words
        if words is not None:
            i = self._word(side_word) >> 3
            words[i] = words[i] + 1
        else:
            rma.add(uni, self._word(COUNT), delta, flush=False)

    def _adjust(self, word: int, delta: int) -> None:
        uni = universe.current()
        with uni.lock:
            rma.add(uni, self._word(word), delta)
            rma.notify(uni, self._bell)  # a slot freed (maxsize) or a task done (join)

    # ------------------------------------------------------- fast paths
    def _try_put_small(self, pieces: list, size: int, count: bool, park: float = 0.0) -> bool:
        """One critical section: lock, write a frame of ``size`` bytes that fits now, publish and unlock.
        (On another host, ``park`` seconds of waiting for room happen at the head.)"""
        uni = universe.current()
        if uni.remote:  # on another host: the head runs this step (one round trip)
            frame = b"".join(_as_bytes(p) for p in pieces)
            return self._remote_step(uni, "put", (frame, size, count), park)
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
                self._tally(uni, SENT, 1)
            self._store_pos(uni, WPOS, end, locked=False)
        return True

    _EMPTY = object()

    def _remote_step(self, uni: Any, step: str, args: tuple, park: float = 0.0) -> Any:
        """Run a one-step put or get on the head; ``park`` > 0: wait there up to that long for it to succeed."""
        op = (relayed.RING, type(self), self.ref, (self._guess[WPOS], self._guess[RPOS]), step, args)
        if park > 0:  # not under uni.lock: other threads of this process go on meanwhile
            result, guess = uni.wait([op], (relayed.RING_READY,), park)
        else:
            with uni.lock:
                result, guess = uni.call(op)
        self._guess[WPOS], self._guess[RPOS] = guess
        if isinstance(result, bytes):
            return memoryview(result)
        if isinstance(result, tuple):
            return (result[0], memoryview(result[1]))
        return self._EMPTY if result == "empty" else result

    def _try_get_small(self, owner: Optional[int] = None, park: float = 0.0) -> Any:
        """One critical section: take a whole frame of up to 64 KiB.

        Returns the frame body, ``_EMPTY``, ``None`` (the consumer lock is
        busy) or ``(r, start)`` for a larger frame: the lock is then held at
        ``r`` and ``start`` holds the frame's first bytes, already read
        (``owner``, default this process, is then recorded as its holder).
        A ring with ``_single_reader`` set skips the consumer lock: its one
        reader always knows the read position. On another host the head runs
        it, and waits there up to ``park`` seconds for a frame.
        """
        uni = universe.current()
        if uni.remote:  # on another host: the head runs this step (one round trip)
            return self._remote_step(uni, "get", (owners.me() if owner is None else owner,), park)
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
            if not self.single_reader:  # a ring with one reader knows the position: no lock
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
            mem = uni.mem
            if mem is not None:  # the arena is mapped here: read the length, copy the frame exactly
                end = 8 + int(uni.words[(self._data + at) >> 3])
                if end <= avail and at + end <= cap and end <= self._fast_bytes:
                    start = self._data + at + 8
                    body = memoryview(bytearray(mem[start:start + end - 8]))  # writable, as numpy arrays expect
                    if self.counted:
                        self._tally(uni, TAKEN, -1)
                    self._store_pos(uni, RPOS, (r + end + 7) & ~7, locked=False)
                    return body
            n = min(avail, cap - at, 4096)
            buf = bytearray(n)
            rma.get(uni, self._data + at, buf)
            rma.flush(uni)
            end = 8 + serialize.body_length(buf)
            if end > n:
                if end > self._fast_bytes or end > avail or at + end > cap:
                    if not self.single_reader:
                        rma.store(uni, self._word(OWNER_R), owners.me() if owner is None else owner)
                    return (r, memoryview(buf))  # large, incomplete or wrapping: stream the rest
                whole = _uninitialized(end)
                whole[:n] = buf
                rma.get(uni, self._data + at + n, memoryview(whole)[n:])
                rma.flush(uni)
                buf = whole
            if self.counted:
                self._tally(uni, TAKEN, -1)
            self._store_pos(uni, RPOS, (r + end + 7) & ~7, locked=False)
        return memoryview(buf)[8:end]

    # ---------------------------------------------------------- public
    def send(self, pieces: Sequence[memoryview], deadline: Optional[float], stalled: Stalled = None) -> None:
        """Write one frame (``serialize.dumps`` pieces); ``TimeoutError`` if it could not start by ``deadline``.

        A frame up to ``FAST_BYTES`` that fits goes in in one step; a larger
        one streams in as the reader frees space, and once started it is
        finished (a timeout there would leave half a frame) unless a reader
        dies in the middle of a frame: ``QueueBroken`` then. ``stalled`` is
        called while the ring is full and may raise (a dead reader); on any
        exception mid-frame the ring is marked broken. ``QueueBroken`` if
        another sender died in the middle of a frame.
        """
        size = sum(_as_bytes(p).nbytes for p in pieces)
        if size <= FAST_BYTES:
            wait = watch = None  # made on the first miss: the frame usually fits at once
            while not self._try_put_small(pieces, size, self.counted, _park(wait, deadline)):
                if expired(deadline):
                    raise TimeoutError(f"{type(self).__name__}: the ring stayed full")
                if stalled is not None:
                    stalled()
                if watch is None:
                    wait, watch = universe.waiter(self._bell), _HolderWatch()
                watch.check(self, WPOS)
                wait.pause(deadline)
            return
        w = self._lock(WPOS, deadline, stalled)
        if w is None:
            raise TimeoutError(f"{type(self).__name__}: could not take the producer lock in time")
        if self.counted:
            self._adjust(COUNT, 1)
        end = self._streaming(WPOS, self._write_frame, pieces, w, stalled)
        self._unlock(WPOS, end)

    def receive(self, deadline: Optional[float], stalled: Stalled = None, spin: Optional[float] = None,
                yield_cpu: Optional[bool] = None) -> Optional[memoryview]:
        """The body of the next frame (for ``serialize.loads``), or None if none started by ``deadline``.

        Waits with :func:`~mpigroup.sync.universe.waiter` (spinning ``spin``
        seconds first, yielding the core if ``yield_cpu``, where given), then
        sleeps on the ring's doorbell. ``stalled`` is called between polls and while
        a large frame is incomplete; it may raise. A frame that has started
        arriving is read to its end whatever the deadline, as long as its
        writer lives; ``QueueBroken`` if it died in the middle of the frame,
        or if another reader did (the ring is then broken for good).
        """
        wait = watch = None  # made on the first miss: most calls find a frame at once
        while True:  # the consumer lock is never held while waiting for data
            body = self._try_get_small(park=_park(True, deadline))
            if isinstance(body, tuple):  # a large frame has arrived and we hold the lock: stream it
                body = self._read_frame(body[0], body[1], stalled)
                if self.counted:
                    self._adjust(COUNT, -1)
                return body
            if body is None:
                if watch is None:
                    watch = _HolderWatch()
                watch.check(self, RPOS)
            elif body is not self._EMPTY:
                return body
            elif watch is not None:
                watch.reset()
            if expired(deadline):
                return None
            if stalled is not None:
                stalled()
            if wait is None:
                wait = universe.waiter(self._bell, spin, yield_cpu)
            wait.pause(deadline)

    def reader_drops_dead_writer(self) -> bool:
        """Whether the reader will clear the streaming producer that holds the producer lock
        if that producer dies (:meth:`drop_dead_writer`): then producers waiting for the lock
        wait for that instead of raising QueueBroken. False here; subclasses decide."""
        return False

    def drop_dead_writer(self) -> bool:
        """Single-reader rings, called by the reader only: if the producer lock is held by
        a streaming producer that no longer exists, on any host (or that gave up
        mid-frame: ``ABANDONED``), drop its unfinished frame and unlock, so other
        producers go on; True if it did.

        Complete frames before it are kept. If the reader was in the middle of reading
        that frame (this is called from ``receive``'s ``stalled`` hook), the hook must
        raise after a True: that frame will never be finished.
        """
        uni = universe.current()
        with uni.lock:
            seen = rma.load(uni, self._word(WPOS))
            owner = rma.load(uni, self._word(OWNER_W))
        if not seen & 1 or owner in (0, BROKEN, owners.me()):
            return False
        if owner != ABANDONED and not owners.gone(owner, self._holds(WPOS, owner)):
            return False
        r, end, cap = self._guess[RPOS], seen & ~1, self._capacity
        head = bytearray(8)
        uni = universe.current()
        with uni.lock:
            start = r  # where the dead producer's frame starts: after the complete frames from r on
            if not rma.load(uni, self._word(RPOS)) & 1:  # (mid-frame, its first bytes may be overwritten)
                while end - start >= 8:
                    rma.get(uni, self._data + start % cap, head)
                    rma.flush(uni)
                    following = (start + 8 + serialize.body_length(head) + 7) & ~7
                    if following > end:
                        break
                    start = following
            self._store_pos(uni, RPOS, r, locked=False)  # before producers may write again
            if rma.cas(uni, self._word(WPOS), seen, start) != seen:
                raise QueueBroken(f"{type(self).__name__}: its producer lock changed while it was being "
                                  f"recovered from a dead producer ({owners.describe(owner)})")
            rma.cas(uni, self._word(OWNER_W), owner, 0)  # unless a new producer has recorded itself
            rma.notify(uni, self._bell)  # producers waiting for the lock go on
        return True

    def exists(self) -> bool:
        """False once the ring was destroyed (by any process): one atomic read."""
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._offset + rma.GENERATION * rma.WORD) == self._generation

    @property
    def ref(self) -> tuple[int, int, int, int]:
        """``(offset, generation, capacity, maxsize)``: a few ints from which :meth:`from_ref`
        attaches to this ring in any process of the universe."""
        return (self._offset, self._generation, self._capacity, self._maxsize)

    @classmethod
    def from_ref(cls, ref: Sequence[int]) -> "Ring":
        """A handle to the ring that ``ref`` names (ObjectGone if it was destroyed)."""
        offset, generation, capacity, maxsize = ref[:4]
        return rma.rebuild(cls, offset, generation, (capacity, maxsize))

    def load_word(self, index: int) -> int:
        """Atomic read of extra word ``index`` (0 <= index < ``extra_words``)."""
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._word(RING_WORDS + index))

    def store_word(self, index: int, value: int) -> None:
        """Atomic write of extra word ``index``."""
        uni = universe.current()
        with uni.lock:
            rma.store(uni, self._word(RING_WORDS + index), value)

    def _put_now(self, pieces: list, deadline: Optional[float]) -> None:
        """Stream one frame in (the queues' feeder and SimpleQueue); the count is the caller's."""
        size = sum(_as_bytes(p).nbytes for p in pieces)
        if size <= FAST_BYTES and universe.is_remote():
            # on another host a frame that fits the fast path waits for room at the head, whole:
            # one round trip per frame instead of a stream's lock, loads and stores
            while not self._try_put_small(pieces, size, False, _park(True, deadline)):
                if expired(deadline):
                    raise TimeoutError("the queue stayed full")
                self._find_broken()  # a dead ring never frees room: QueueBroken instead of waiting
            return
        w = self._lock(WPOS, deadline)
        if w is None:
            raise TimeoutError("could not obtain the queue's producer lock in time")
        self._unlock(WPOS, self._streaming(WPOS, self._write_frame, pieces, w))

    def qsize(self) -> int:
        """Frames sent and not yet received (counted rings)."""
        uni = universe.current()
        with uni.lock:
            count = rma.load(uni, self._word(COUNT))
            return max(0, count + rma.load(uni, self._word(SENT)) - rma.load(uni, self._word(TAKEN)))

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    def destroy(self) -> None:
        """Free the queue's arena block now, for every process (later use raises ObjectGone)."""
        self._destroy_block()

