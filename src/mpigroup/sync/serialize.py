"""Message framing for queues: pickle protocol 5 with out-of-band buffers.

A frame is ``u64 body_length`` then the body: ``u32 piece_count, u32 0``,
one ``u64`` length per piece, then the pieces (the pickle stream first,
then each out-of-band buffer). numpy arrays and other buffer-protocol
objects are therefore written straight from their memory and read back as
views of the one received bytearray: no extra copies either side.
"""
from __future__ import annotations

import pickle
import struct
from typing import Any

import cloudpickle

_PREFIX = struct.Struct("<QII")  # body length, piece count, pad
_ONE_PIECE = struct.Struct("<QIIQ")  # the same, then the one length (no out-of-band buffers)


def pickle_value(obj: Any, buffer_callback=None) -> bytes:
    """Pickle with the stdlib, or by value with cloudpickle where that is needed.

    Objects that name the script's ``__main__`` (which other processes cannot
    import), lambdas and local classes go by value. Raises the pickler's own
    exception when neither can pickle ``obj``.
    """
    buffers: list = []  # held back until the stdlib's pickle is known to be the one used
    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=None if buffer_callback is None else buffers.append)
        if b"__main__" not in data:
            if buffer_callback is not None:
                for b in buffers:
                    buffer_callback(b)
            return data
    except Exception:
        pass
    return cloudpickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)


def dumps(obj: Any, plain: bool = False) -> list[memoryview]:
    """Serialize ``obj`` into frame pieces; raises ``TypeError`` in the caller if it cannot be pickled.

    ``plain=True`` uses the stdlib pickler only (for frames of ints, strings
    and bytes that are already pickled, where looking for ``__main__`` is wasted).
    """
    buffers: list[pickle.PickleBuffer] = []
    try:
        if plain:
            main = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        else:
            main = pickle_value(obj, buffers.append)
    except Exception as exc:
        raise TypeError(f"cannot put an object of type {type(obj).__name__} on a queue: "
                        f"it cannot be pickled ({exc})") from exc
    if not buffers:  # the common small case: one contiguous frame
        return [memoryview(_ONE_PIECE.pack(16 + len(main), 1, 0, len(main)) + main)]
    raws = [memoryview(main)] + [b.raw() for b in buffers]
    lengths = struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws))
    body = 8 + len(lengths) + sum(r.nbytes for r in raws)
    head = _PREFIX.pack(body, len(raws), 0) + lengths
    return [memoryview(head)] + raws


def frame_size(pieces: list[memoryview]) -> int:
    return sum(p.nbytes for p in pieces)


def body_length(prefix: bytes) -> int:
    return struct.unpack_from("<Q", prefix)[0]


def loads(body: memoryview) -> Any:
    """Rebuild an object from a frame body (the bytes after ``u64 body_length``)."""
    count = struct.unpack_from("<I", body, 0)[0]
    lengths = struct.unpack_from(f"<{count}Q", body, 8)
    pos = 8 + 8 * count
    pieces = []
    for n in lengths:
        pieces.append(body[pos:pos + n])
        pos += n
    return pickle.loads(pieces[0], buffers=pieces[1:])
