"""Key encoding and sharding for the DDict. Pure Python, no MPI.

A key is stored as its *canonical pickle*: protocol 5 without the memo (so
``(s, s)`` and ``(s, copy_of_s)`` encode alike) and with sets written in a
sorted order (their iteration order depends on the salted ``hash()``). Two
keys are the same key when their encodings are equal; the shard is chosen by
CRC-32 of the encoding, which every process and node computes alike.
Note that ``1``, ``1.0`` and ``True`` are therefore three different keys.
"""
from __future__ import annotations

import io
import pickle
import zlib
from typing import Any


_PLAIN = (str, bytes, int, float, bool, type(None))


class _SetKey:
    """Stands in for a set inside a key: pickles as that set built from a sorted list."""

    __slots__ = ("kind", "items")

    def __init__(self, kind: type, items: list) -> None:
        self.kind, self.items = kind, items

    def __reduce__(self) -> tuple:
        return (self.kind, (self.items,))


def _canonical(obj: Any) -> Any:
    """``obj`` with every set replaced by a sorted stand-in (containers walked)."""
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is tuple:
        return tuple(_canonical(x) for x in obj)
    if kind is list:
        return [_canonical(x) for x in obj]
    if kind is dict:
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if kind in (set, frozenset):
        return _SetKey(kind, sorted((_canonical(x) for x in obj), key=_dump))
    return obj


def _dump(obj: Any) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.fast = True  # no memo: equal keys give equal bytes
    pickler.dump(obj)
    return buf.getvalue()


def encode_key(key: Any) -> bytes:
    """The canonical byte encoding of ``key``; TypeError if it cannot be pickled."""
    if type(key) is str and len(key) < 256:  # the common case: nothing to canonicalise
        return pickle.dumps(key, protocol=5)
    try:
        return _dump(_canonical(key))
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise TypeError(f"DDict keys must be picklable; {type(key).__name__} is not ({exc})") from exc


def decode_key(data: bytes) -> Any:
    return pickle.loads(data)


def key_hash(encoded: bytes) -> int:
    """A 32-bit hash of an encoded key (CRC-32), the same in every process and on every
    platform (never the salted ``hash()``); it spreads keys, it does not protect them."""
    return zlib.crc32(encoded)


def shard_of(encoded: bytes, n_managers: int) -> int:
    """Which of ``n_managers`` shards holds the key."""
    return zlib.crc32(encoded) % n_managers if n_managers > 1 else 0
