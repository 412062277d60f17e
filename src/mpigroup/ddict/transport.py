"""Frames between DDict clients and managers, over RMA rings in the arena.

Every manager reads requests from one :class:`Channel`; every client thread
reads replies from one of its own. A message is one frame of *logical
pieces*: a small pickled header first, then value blobs. A value blob is a
whole serialized value (``serialize.dumps``: pickle protocol 5 with
out-of-band buffers), so numpy data is copied straight from the caller's
array into the ring, kept by the manager as received, and read back as a
view of the received buffer. On one node the rings are shared memory
(osc/sm): bulk values never touch TCP.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import struct
import time
from typing import Any, Callable, Optional, Sequence, Union

from ..base import config
from ..sync import serialize
from ..sync.ring import Ring

log = logging.getLogger(__name__)

Piece = Union[bytes, bytearray, memoryview]
Stalled = Optional[Callable[[], None]]


def rpc_spin() -> float:
    """Seconds a DDict party spins (yielding the core) before it sleeps (``MPIGROUP_DDICT_SPIN_US``).

    It spins while an answer or the next request is likely to come soon: a
    client waiting for its reply, a manager that has just answered. A sleep
    on a VM overshoots by 50-100 us, more than a whole small request takes.
    """
    return config.cached("MPIGROUP_DDICT_SPIN_US") * 1e-6

_COUNT = struct.Struct("<QII")
_ONE = struct.Struct("<I")
_ONE_PIECE = struct.Struct("<QIIQ")  # a blob with no out-of-band buffers: body length, 1, 0, pickle length


def encode_value(value: Any) -> list[memoryview]:
    """A value blob as pieces (no copy of buffer-protocol data); TypeError if unpicklable."""
    if type(value) is bytes:
        return _bytes_blob(value)
    try:
        return serialize.dumps(value)
    except TypeError as exc:
        raise TypeError(str(exc).replace("on a queue", "in a DDict")) from None


def _bytes_blob(value: bytes) -> list[memoryview]:
    """The blob of a ``bytes`` value, made without pickle: the protocol-5 pickle
    (PROTO, SHORT_BINBYTES or BINBYTES8 with the length, the bytes, STOP) written
    around the value; a large value is not copied."""
    n = len(value)
    if n < 256:
        pickled = b"\x80\x05C" + bytes((n,)) + value + b"."
        return [memoryview(_ONE_PIECE.pack(16 + len(pickled), 1, 0, len(pickled)) + pickled)]
    size = 2 + 9 + n + 1
    head = _ONE_PIECE.pack(16 + size, 1, 0, size) + b"\x80\x05\x8e" + struct.pack("<Q", n)
    if n < _COALESCE:
        return [memoryview(head + value + b".")]
    return [memoryview(head), memoryview(value), memoryview(b".")]


def decode_value(blob: memoryview) -> Any:
    """The value of a blob (numpy arrays come back as views of ``blob``)."""
    if _ONE.unpack_from(blob, 8)[0] == 1:  # no out-of-band buffers: the pickle starts at byte 24
        return pickle.loads(blob[24:])
    return serialize.loads(memoryview(blob)[8:])


def blob_length(pieces: Sequence[memoryview]) -> int:
    return sum(p.nbytes for p in pieces)


_COALESCE = 64 << 10  # pieces below this are copied together: one RMA put instead of many


def build_frame(header: tuple, blobs: Sequence[Sequence[Piece]] = (), whole: Sequence[Piece] = ()
                ) -> list[memoryview]:
    """Frame pieces for a header and value blobs, each given as its pieces (``blobs``)
    or as one buffer (``whole``; give one or the other).

    Runs of small pieces are joined into one buffer (each would otherwise
    cost an MPI call); large pieces stay as they are, uncopied.
    """
    head = pickle.dumps(header, protocol=5)
    if whole:
        lengths = [len(head)]
        lengths += map(len, whole)
        parts: Sequence[Piece] = whole
    else:
        parts = [p for blob in blobs for p in blob]
        lengths = [len(head)] + [sum(memoryview(p).nbytes for p in blob) for blob in blobs]
    count = len(lengths)
    body = 8 + 8 * count + sum(lengths)
    out: list[memoryview] = []
    run: list = [_COUNT.pack(body, count, 0), struct.pack(f"<{count}Q", *lengths), head]
    for p in parts:
        if len(p) < _COALESCE if isinstance(p, bytes) else memoryview(p).nbytes < _COALESCE:
            run.append(p)
        else:
            out.append(memoryview(b"".join(run)))
            out.append(memoryview(p))
            run = []
    if run:
        out.append(memoryview(b"".join(run)))
    return out


def split_frame(body: memoryview) -> tuple[Any, list[memoryview]]:
    """(header, blobs) of a received frame body; blobs are views of ``body``."""
    count = struct.unpack_from("<I", body, 0)[0]
    lengths = struct.unpack_from(f"<{count}Q", body, 8)
    pos = 8 + 8 * count
    header = pickle.loads(body[pos:pos + lengths[0]])
    pos += lengths[0]
    blobs = []
    for n in lengths[1:]:
        blobs.append(body[pos:pos + n])
        pos += n
    return header, blobs


class Channel(Ring):
    """A one-way ring of whole frames: any number of senders, exactly one reader
    (a manager's request ring, a client thread's reply ring), so reading takes no lock.

    ``send`` is :meth:`Ring.send` (TimeoutError if the frame could not start
    in time, QueueBroken if another sender died mid-frame).
    """

    single_reader = True
    counted = False

    def __init__(self, capacity: Optional[int] = None) -> None:
        super().__init__(0, capacity)

    @property
    def address(self) -> tuple:
        """What a manager needs to reply here (picklable, a few ints), and whose it is:
        (offset, generation, capacity, maxsize, host, pid)."""
        return self.ref + (socket.gethostname(), os.getpid())

    @classmethod
    def at(cls, address: tuple) -> "Channel":
        """The channel that ``address`` names (ObjectGone if it was destroyed)."""
        return cls.from_ref(address[:4])

    def recv(self, deadline: Optional[float], stalled: Stalled = None) -> Optional[memoryview]:
        """The next frame body, or None if none started by ``deadline``
        (spins for :func:`rpc_spin` first, then sleeps with backoff)."""
        return self.receive(deadline, stalled, rpc_spin(), yield_cpu=True)


class _WriterDied(Exception):
    """The request being received was dropped: its client died while sending it."""


class RequestChannel(Channel):
    """A manager's request ring, with two more shared words: the *epoch*, which
    the manager moves on before any request that may free a stored blob, once
    it has handed out a blob's address (see ``cma``), and whether the manager claimed it.

    A client that dies while it streams a request in (a killed or OOM-killed
    worker) would hold the ring's producer lock for ever: the manager, its one
    reader, drops that unfinished request and frees the lock
    (:meth:`Ring.drop_dead_writer`), and the other clients, who wait for the
    lock meanwhile, go on.
    """

    extra_words = 2
    _EPOCH, _CLAIMED = 0, 1  # its extra words
    WRITER_CHECK_EVERY = 0.5  # seconds between checks of a held producer lock while no request moves

    def claim(self) -> None:
        """Record that the manager (the one reader) serves this ring: call once, before it first receives.
        From then on the reader drops a dead producer's unfinished request (owners are host-aware,
        :mod:`mpigroup.sync.owners`, so the manager can tell from any host)."""
        self.store_word(self._CLAIMED, 1)

    def reader_drops_dead_writer(self) -> bool:
        return self.load_word(self._CLAIMED) == 1

    def recv(self, deadline: Optional[float], stalled: Stalled = None) -> Optional[memoryview]:
        """As :meth:`Channel.recv`; a request whose sender died part way is dropped (and logged)."""
        check = {"next": time.monotonic() + self.WRITER_CHECK_EVERY}

        def watch() -> None:  # called between polls and while a request's rest is awaited
            if stalled is not None:
                stalled()
            now = time.monotonic()
            if now >= check["next"]:
                check["next"] = now + self.WRITER_CHECK_EVERY
                if self.drop_dead_writer():
                    raise _WriterDied()

        while True:
            try:
                return self.receive(deadline, watch, rpc_spin(), yield_cpu=True)
            except _WriterDied:
                log.warning("a DDict client died while sending a request; that request was dropped")

    def epoch(self) -> int:
        return self.load_word(self._EPOCH)

    def set_epoch(self, value: int) -> None:
        self.store_word(self._EPOCH, value)
