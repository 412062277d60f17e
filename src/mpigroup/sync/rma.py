"""Passive-target RMA on the head's arena, and the base of every shared object.

All operations target rank 0 (the head) of the universe window inside one
``MPI_Win_lock_all`` epoch that each member keeps open: atomics are
``MPI_Fetch_and_op``/``MPI_Compare_and_swap``/``MPI_Accumulate`` on aligned
64-bit words, data moves with ``MPI_Put``/``MPI_Get``, and ``MPI_Win_flush``
completes them. On one node Open MPI serves these from shared memory (osc/sm)
with no progress needed from the head.

Every object starts with two words: a reference count (handles alive in all
processes) and a generation, so a handle whose block was freed and reused is
detected instead of corrupting another object.
"""
from __future__ import annotations

import array
import itertools
import os
import threading
import weakref
from typing import Optional

import numpy as np

from ..base import sharing
from ..errors import ObjectGone
from ..runtime import context
from . import bells, relayed, universe
from .mpi import MPI

WORD = 8
REFCOUNT, GENERATION = 0, 1  # word indexes common to every object
HEADER_WORDS = 2

_generations = itertools.count(int.from_bytes(os.urandom(3), "little") << 20)
_I64 = MPI.INT64_T
# Per-thread origin/result buffers of the word operations, by thread id. ``array('q')``
# rather than numpy: reading ``res[0]`` gives a Python int at once (``int()`` of a numpy
# scalar cost 0.3 us per operation), and a dict lookup is cheaper than a threading.local.
_scratch_of: dict = {}


def _scratch() -> tuple:
    s = _scratch_of.get(threading.get_ident())
    if s is None:
        if len(_scratch_of) > 256:  # threads come and go (queue feeders): drop the ended ones
            alive = {t.ident for t in threading.enumerate()}
            for ident in [i for i in _scratch_of if i not in alive]:
                _scratch_of.pop(ident, None)
        s = _scratch_of[threading.get_ident()] = (array.array("q", bytes(64)), array.array("q", bytes(64)),
                                                   array.array("q", bytes(64)))
    return s


# --------------------------------------------------------------- word ops
# Callers hold ``uni.lock``. Offsets are byte offsets into the arena.

def fetch_add(uni: universe.Universe, offset: int, value: int) -> int:
    if uni.remote:
        return uni.call((relayed.FETCH_ADD, offset, value))
    src, res, _ = _scratch()
    src[0] = value
    uni.win.Fetch_and_op([src, 1, _I64], [res, 1, _I64], universe.HEAD, offset, MPI.SUM)
    uni.win.Flush(universe.HEAD)
    return res[0]


def load(uni: universe.Universe, offset: int, count: int = 1):
    """Atomic read of ``count`` consecutive words (one call).

    One word is read straight from the shared window where there is one
    (an aligned 8-byte load is atomic, and every writer of a word writes it
    whole); several words go through ``MPI_Get_accumulate``, atomic as a group.
    """
    if uni.remote:
        return uni.call((relayed.LOAD, offset, count))
    words = uni.words
    if words is not None and count == 1:
        return int(words[offset >> 3])
    src, res, _ = _scratch()
    uni.win.Get_accumulate([src, count, _I64], [res, count, _I64], universe.HEAD, [offset, count, _I64], MPI.NO_OP)
    uni.win.Flush(universe.HEAD)
    return res[0] if count == 1 else list(res[:count])


def _accumulate(uni: universe.Universe, offset: int, value: int, op: MPI.Op, flush: bool) -> None:
    src, _, _ = _scratch()
    src[0] = value
    uni.win.Accumulate([src, 1, _I64], universe.HEAD, [offset, 1, _I64], op)
    if flush:
        uni.win.Flush(universe.HEAD)


def store(uni: universe.Universe, offset: int, value: int, flush: bool = True) -> None:
    if uni.remote:
        return uni.post((relayed.STORE, offset, value))
    _accumulate(uni, offset, value, MPI.REPLACE, flush)


def publish(uni: universe.Universe, offset: int, value: int) -> None:
    """Store a word that only this process may write now, then a full fence.

    For a ring position whose lock this process holds (or the read position
    of a single-reader ring): nobody else stores it meanwhile, and a
    competitor's compare-and-swap on a held lock fails without writing. So
    in a shared window it is one plain 8-byte store, which on x86-64 cannot
    pass the data copies and counts before it; the fence then orders it
    before the doorbell read that follows (:func:`notify`).
    """
    words = None if uni.remote else uni.words
    if words is not None:
        words[offset >> 3] = value
        uni.win.Flush(universe.HEAD)
        return
    store(uni, offset, value)


def add(uni: universe.Universe, offset: int, value: int, flush: bool = True) -> None:
    if uni.remote:
        return uni.post((relayed.ADD, offset, value))
    _accumulate(uni, offset, value, MPI.SUM, flush)


def cas(uni: universe.Universe, offset: int, expected: int, new: int) -> int:
    """Compare-and-swap; returns the old value (success iff it equals ``expected``)."""
    if uni.remote:
        return uni.call((relayed.CAS, offset, expected, new))
    src, res, cmp = _scratch()
    src[0], cmp[0] = new, expected
    uni.win.Compare_and_swap([src, 1, _I64], [cmp, 1, _I64], [res, 1, _I64], universe.HEAD, offset)
    uni.win.Flush(universe.HEAD)
    return res[0]


def take(uni: universe.Universe, offset: int) -> bool:
    """Decrement the word if it is positive (a semaphore's acquire); True if it did."""
    v = load(uni, offset)
    while v > 0:
        seen = cas(uni, offset, v, v - 1)
        if seen == v:
            return True
        v = seen
    return False


def put(uni: universe.Universe, offset: int, data) -> None:
    """Copy bytes into the arena (complete after :func:`flush`): a plain copy into a shared window."""
    if uni.remote:
        return uni.post((relayed.PUT, offset, bytes(data)))
    mem = uni.mem
    if mem is not None:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        mem[offset:offset + view.nbytes] = view
        return None
    uni.win.Put([data, MPI.BYTE], universe.HEAD, [offset, len(data), MPI.BYTE])


def get(uni: universe.Universe, offset: int, out) -> None:
    """Copy bytes out of the arena into ``out`` (complete after :func:`flush`)."""
    if uni.remote:
        memoryview(out).cast("B")[:] = uni.call((relayed.GET, offset, memoryview(out).nbytes))
        return None
    mem = uni.mem
    if mem is not None:
        view = memoryview(out)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        view[:] = mem[offset:offset + view.nbytes]
        return None
    uni.win.Get([out, MPI.BYTE], universe.HEAD, [offset, len(out), MPI.BYTE])


def flush(uni: universe.Universe) -> None:
    if uni.remote:  # shipped operations are applied in order: a later answered one sees them
        return None
    uni.win.Flush(universe.HEAD)


def notify(uni: universe.Universe, bell: int) -> None:
    """Wake whoever sleeps on ``bell`` (:mod:`.bells`) after a change they may wait for.

    The change must be flushed first (every store here flushes by default).
    Costs one memory read when nobody sleeps; on another host it is posted
    to the head, whose host the sleepers are on.
    """
    if uni.remote:
        uni.post((relayed.NOTIFY, bell))
    elif uni.bells is not None:
        uni.bells.ring(bell)


def drop_reference(uni: universe.Universe, offset: int, generation: int) -> bool:
    """Decrement an object's reference count; True if the caller must free the block."""
    with uni.lock:
        if load(uni, offset + GENERATION * WORD) != generation:
            return False
        if fetch_add(uni, offset + REFCOUNT * WORD, -1) != 1:
            return False
        store(uni, offset + GENERATION * WORD, -1)  # stale handles now see ObjectGone
        return True


# ------------------------------------------------------------ base object
class SharedObject:
    """A block of the arena, named by (offset, generation); picklable anywhere.

    Subclasses set ``_words`` (int64 state words after the header) and may
    add ``_extra_bytes`` of data; ``_params`` travel with the handle.
    """

    _words = 0

    def __init__(self, *, _extra_bytes: int = 0, _init: Optional[dict] = None) -> None:
        uni = universe.current()
        size = (HEADER_WORDS + self._words) * WORD + _extra_bytes
        offset = _allocate(size)
        generation = next(_generations)
        with uni.lock:
            zeros = np.zeros((HEADER_WORDS + self._words), np.int64)
            zeros[REFCOUNT] = 1
            zeros[GENERATION] = generation
            for index, value in (_init or {}).items():
                zeros[HEADER_WORDS + index] = value
            put(uni, offset, zeros.view(np.uint8))
            flush(uni)
        self._attach(offset, generation, counted=True)

    def _attach(self, offset: int, generation: int, counted: bool) -> None:
        self._offset = offset
        self._generation = generation
        self._bell = bells.bell_of(offset)  # what its waiters sleep on and its changes ring
        uni = universe.current()
        if not counted:
            with uni.lock:
                if load(uni, offset + GENERATION * WORD) != generation:
                    raise ObjectGone(f"{type(self).__name__} at arena offset {offset} no longer exists")
                fetch_add(uni, offset + REFCOUNT * WORD, 1)
        self._finalizer = weakref.finalize(self, uni.defer_release, offset, generation)

    def _word(self, index: int) -> int:
        """Byte offset of state word ``index`` (after the header)."""
        return self._offset + (HEADER_WORDS + index) * WORD

    @property
    def _data(self) -> int:
        return self._offset + (HEADER_WORDS + self._words) * WORD

    def _params(self) -> tuple:
        return ()

    def __reduce__(self):
        sharing.note_handle_pickled()
        return (rebuild, (type(self), self._offset, self._generation, self._params()))

    def _destroy_block(self) -> None:
        """Free the block now for every process; other handles then raise ObjectGone."""
        uni = universe.current()
        with uni.lock:
            gen_word = self._offset + GENERATION * WORD
            if cas(uni, gen_word, self._generation, -1) != self._generation:
                return  # already destroyed
            notify(uni, self._bell)  # sleepers look again and find it gone
        self._finalizer.detach()
        _free(self._offset)


def rebuild(cls: type, offset: int, generation: int, params: tuple) -> SharedObject:
    """A handle of class ``cls`` to the object at ``offset`` (what unpickling a handle does).

    Counts a reference; raises ObjectGone if the object no longer exists.
    """
    obj = cls.__new__(cls)
    obj._restore(*params)
    obj._attach(offset, generation, counted=False)
    return obj


def _free(offset: int) -> None:
    ctx = context.require_worker_or_head()
    if ctx.role == "head":
        universe.head_service().free(offset)
    else:
        ctx.api.call("arena_free", offset=offset)


def _allocate(nbytes: int) -> int:
    ctx = context.require_worker_or_head()
    if ctx.role == "head":
        return universe.head_service().allocate(nbytes)
    return ctx.api.call("arena_alloc", nbytes=nbytes)
