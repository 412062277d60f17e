"""One manager's shard: a dict of encoded keys to value blobs with an exact
byte budget and checkpoints. Pure Python, no MPI.

*Bytes used* is the sum, over every entry held, of the encoded key's length
plus the value blob's length, values kept for rollback included. A write that
would take it over the budget raises :class:`ShardFull` and changes nothing.

Checkpoints are undo logs: ``checkpoint()`` starts logging the first old
value of each key changed from then on; ``rollback()`` puts those back and
returns to the previous checkpoint id. Only the last ``working_set_size``
checkpoints keep their logs, so only that many rollbacks are possible.
"""
from __future__ import annotations

import os
import struct
from typing import Any, BinaryIO, Iterator, Optional, Union

Blob = Union[bytes, memoryview]
_ABSENT = None  # an undo-log value: the key did not exist

_MAGIC = b"MPIGROUP-DDICT-SHARD-1\n"
_RECORD = struct.Struct("<QQ")


class ShardFull(Exception):
    """A write would exceed the shard's byte budget.

    Internal: the manager answers it as ``Status.FULL`` and the client raises
    :class:`~mpigroup.errors.DDictFullError`.
    """


class NoCheckpoint(Exception):
    """``rollback()`` with no earlier checkpoint retained (internal: the client raises DDictError)."""


class ShardStore:
    """The key/value state of one shard, with byte accounting and undo logs."""

    def __init__(self, budget: int, working_set_size: int = 4) -> None:
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        if working_set_size < 0:
            raise ValueError(f"working_set_size must be >= 0, got {working_set_size}")
        self.budget = budget
        self.working_set_size = working_set_size
        self.data: dict[bytes, Blob] = {}
        self.used = 0
        self.checkpoint_id = 0
        self._undo: list[tuple[int, dict[bytes, Optional[Blob]]]] = []  # (checkpoint id, first old values)
        self._undo_bytes = 0

    # ----------------------------------------------------------- accounting
    @staticmethod
    def _size(key: bytes, blob: Optional[Blob]) -> int:
        return len(key) + (0 if blob is None else len(blob))

    def _cost(self, key: bytes, blob: Optional[Blob]) -> int:
        """Change in bytes used if ``key`` becomes ``blob`` (None: deleted)."""
        old = self.data.get(key)
        new_size = 0 if blob is None else self._size(key, blob)
        old_size = 0 if old is None else self._size(key, old)
        if self._undo and key not in self._undo[-1][1]:
            return new_size + self._size(key, old) - old_size  # the old value moves to the undo log
        return new_size - old_size

    def _apply(self, key: bytes, blob: Optional[Blob]) -> None:
        old = self.data.get(key)
        if self._undo:
            log = self._undo[-1][1]
            if key not in log:
                log[key] = old
                self._undo_bytes += self._size(key, old)
                self.used += self._size(key, old)
        if old is not None:
            self.used -= self._size(key, old)
            if blob is None:
                del self.data[key]
        if blob is not None:
            self.data[key] = blob
            self.used += self._size(key, blob)

    def _full(self, need: int) -> ShardFull:
        return ShardFull(f"shard budget is {self.budget} bytes, {self.used} are in use "
                         f"({self._undo_bytes} of them kept for rollback); the write needs {need} more")

    # ------------------------------------------------------------ mapping
    def put_many(self, items: list[tuple[bytes, Blob]]) -> None:
        """Store every item, or none of them if together they do not fit."""
        if len(items) == 1:
            key, blob = items[0]
            need = self._cost(key, blob)
        else:
            need = self._batch_cost(items)
        if need > 0 and self.used + need > self.budget:
            raise self._full(need)
        for key, blob in items:
            self._apply(key, blob)

    def _batch_cost(self, items: list[tuple[bytes, Blob]]) -> int:
        final: dict[bytes, Blob] = {}
        for key, blob in items:
            final[key] = blob  # the last write of a key wins
        return sum(self._cost(key, blob) for key, blob in final.items())

    def get(self, key: bytes) -> Optional[Blob]:
        return self.data.get(key)

    def __contains__(self, key: bytes) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def delete(self, key: bytes) -> Optional[Blob]:
        """Remove ``key``; returns its blob, or None if absent. Raises ShardFull if
        the old value cannot be kept for rollback within the budget."""
        old = self.data.get(key)
        if old is None:
            return None
        need = self._cost(key, None)
        if need > 0 and self.used + need > self.budget:
            raise self._full(need)
        self._apply(key, None)
        return old

    def popitem(self) -> Optional[tuple[bytes, Blob]]:
        """Remove and return the most recently inserted entry, or None if empty."""
        if not self.data:
            return None
        key = next(reversed(self.data))
        blob = self.data[key]
        self.delete(key)
        return key, blob

    def clear(self) -> None:
        """Remove every key (logged for rollback like single deletes)."""
        keys = list(self.data)
        need = sum(self._cost(k, None) for k in keys)
        if need > 0 and self.used + need > self.budget:
            raise self._full(need)
        for key in keys:
            self._apply(key, None)

    def items(self) -> Iterator[tuple[bytes, Blob]]:
        return iter(list(self.data.items()))

    # -------------------------------------------------------- checkpoints
    def checkpoint(self) -> int:
        """Start a new checkpoint; returns its id."""
        self.checkpoint_id += 1
        if self.working_set_size:
            self._undo.append((self.checkpoint_id, {}))
            while len(self._undo) > self.working_set_size:
                _, dropped = self._undo.pop(0)
                freed = sum(self._size(k, v) for k, v in dropped.items())
                self._undo_bytes -= freed
                self.used -= freed
        return self.checkpoint_id

    def rollback(self) -> int:
        """Undo every change since the current checkpoint began; returns the previous id."""
        if not self._undo or self._undo[-1][0] != self.checkpoint_id:
            raise NoCheckpoint(f"no earlier checkpoint is retained (current id {self.checkpoint_id}, "
                               f"working_set_size {self.working_set_size})")
        _, log = self._undo.pop()
        for key, old in log.items():
            cur = self.data.pop(key, None)
            if cur is not None:
                self.used -= self._size(key, cur)
            if old is not None:
                self.data[key] = old  # its bytes stay counted: they move from the log back to the data
            else:
                self.used -= self._size(key, None)
            self._undo_bytes -= self._size(key, old)
        self.checkpoint_id -= 1
        return self.checkpoint_id

    @property
    def retained_checkpoints(self) -> int:
        return len(self._undo)

    def stats(self) -> dict[str, Any]:
        return {"keys": len(self.data), "bytes_used": self.used, "bytes_budget": self.budget,
                "bytes_for_rollback": self._undo_bytes, "checkpoint_id": self.checkpoint_id,
                "rollbacks_possible": self.retained_checkpoints}

    # --------------------------------------------------------- persistence
    def write(self, path: str) -> int:
        """Write the current entries to ``path`` atomically; returns how many."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            for key, blob in self.data.items():
                f.write(_RECORD.pack(len(key), len(blob)))
                f.write(key)
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return len(self.data)


def read_entries(path: str) -> Iterator[tuple[bytes, bytes]]:
    """The (encoded key, blob) records of a shard file written by ``ShardStore.write``."""
    with open(path, "rb") as f:
        _check_magic(f, path)
        while True:
            head = f.read(_RECORD.size)
            if not head:
                return
            if len(head) != _RECORD.size:
                raise ValueError(f"{path}: truncated record header")
            klen, vlen = _RECORD.unpack(head)
            key, blob = f.read(klen), f.read(vlen)
            if len(key) != klen or len(blob) != vlen:
                raise ValueError(f"{path}: truncated record")
            yield key, blob


def _check_magic(f: BinaryIO, path: str) -> None:
    if f.read(len(_MAGIC)) != _MAGIC:
        raise ValueError(f"{path} is not a DDict shard file")
