"""First-fit allocator for the head's arena window (pure logic, no MPI).

Every shared object (queue ring, event word, lock word ...) is a block of the
one arena window that the head exposes to the universe. The head alone
allocates, so no distributed allocator is needed; blocks are 64-byte aligned
so that the 8-byte atomic words of different objects never share a cache line.
"""
from __future__ import annotations

import bisect

from ..errors import ArenaFull

__all__ = ["ALIGN", "Arena", "ArenaFull"]

ALIGN = 64


class Arena:
    """Tracks free and used byte ranges of a fixed-size arena."""

    def __init__(self, size: int, reserved: int = ALIGN) -> None:
        if size <= reserved:
            raise ValueError(f"arena of {size} bytes is too small")
        self.size = size
        self._free: list[tuple[int, int]] = [(reserved, size - reserved)]  # (offset, length), sorted
        self._used: dict[int, int] = {}

    @staticmethod
    def _round(nbytes: int) -> int:
        return (max(nbytes, 1) + ALIGN - 1) // ALIGN * ALIGN

    def allocate(self, nbytes: int) -> int:
        """Place ``nbytes`` (rounded up to 64) in the first free range that fits; its offset.

        Raises :class:`~mpigroup.errors.ArenaFull` when no free range is large enough.
        """
        need = self._round(nbytes)
        for i, (off, length) in enumerate(self._free):
            if length >= need:
                if length == need:
                    del self._free[i]
                else:
                    self._free[i] = (off + need, length - need)
                self._used[off] = need
                return off
        raise ArenaFull(
            f"mpigroup arena full: cannot place {nbytes} bytes ({self.bytes_used} of {self.size} in use); "
            "raise MPIGROUP_ARENA_BYTES or destroy unused objects")

    def free(self, offset: int) -> None:
        """Return the block at ``offset``, merged with free neighbours (``KeyError`` if not allocated)."""
        length = self._used.pop(offset, None)
        if length is None:
            raise KeyError(f"arena offset {offset} is not allocated")
        i = bisect.bisect_left(self._free, (offset, 0))
        self._free.insert(i, (offset, length))
        # merge with the right, then the left neighbour
        if i + 1 < len(self._free) and offset + length == self._free[i + 1][0]:
            self._free[i] = (offset, length + self._free[i + 1][1])
            del self._free[i + 1]
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == self._free[i][0]:
            self._free[i - 1] = (self._free[i - 1][0], self._free[i - 1][1] + self._free[i][1])
            del self._free[i]

    @property
    def bytes_used(self) -> int:
        """Bytes in allocated blocks (rounded sizes)."""
        return sum(self._used.values())

    @property
    def high_water(self) -> int:
        """End of the highest used block: what a window rebuild must copy."""
        if not self._used:
            return ALIGN
        top = max(self._used)
        return top + self._used[top]
