"""How many ready tasks go into one task-queue frame. Pure logic, no MPI.

Every frame costs a fixed few tens of microseconds (queue operations on
both sides, pickling); a no-op task costs about one. So short tasks travel
in batches, sized to hold about ``target`` seconds of work by the measured
time per task of their function, and never more than a fair share of the
backlog, so that every worker gets some. A function with no measurement
yet, or whose tasks take longer than half the target, goes one task per
frame: a slow task never holds back the tasks behind it.
"""
from __future__ import annotations

import collections
import math
from typing import Optional

# a task record: (job_id, index, fn_key, fn_bytes, kind, payload, calls); ``calls`` is 1 for apply
# and the chunk's length for map, so that time is measured and budgeted per call of the function
FN_KEY, PAYLOAD, CALLS = 2, 5, 6


class BatchPlanner:
    """Sizes frames by each function's measured seconds per task (an exponential average)."""

    def __init__(self, workers: int, *, target: float = 2e-3, max_tasks: int = 64, max_bytes: int = 256 << 10,
                 single: bool = False) -> None:
        self.workers = max(1, workers)
        self.target, self.max_tasks, self.max_bytes = target, max_tasks, max_bytes
        self.single = single  # maxtasksperchild: a worker must never take more than it may run
        self._seconds: dict[int, float] = {}

    def observe(self, fn_key: int, calls: int, seconds: float) -> None:
        """Record that ``calls`` calls of ``fn_key`` took ``seconds`` in a worker."""
        if calls <= 0:
            return
        per = seconds / calls
        old = self._seconds.get(fn_key)
        self._seconds[fn_key] = per if old is None else 0.7 * old + 0.3 * per
        if len(self._seconds) > 1024:
            self._seconds.pop(next(iter(self._seconds)))

    def estimate(self, fn_key: int) -> Optional[float]:
        return self._seconds.get(fn_key)

    def cap(self, fn_key: int, backlog: int) -> tuple[int, int]:
        """(most tasks, most calls) of ``fn_key`` for the next frame, with ``backlog`` tasks queued or running."""
        per = self._seconds.get(fn_key)
        if self.single or per is None or per >= self.target / 2:
            return 1, 1
        by_time = int(self.target / max(per, 1e-7))
        share = math.ceil(backlog / self.workers)
        return max(1, min(self.max_tasks, share)), max(1, by_time)

    def take(self, outbox: collections.deque, in_flight: int) -> list:
        """Pop the next frame's records from the left of ``outbox`` (one function per frame).

        The first record always goes; more follow while the frame stays
        within the caps in tasks, calls (a map chunk counts its length) and bytes.
        """
        first = outbox.popleft()
        batch = [first]
        max_tasks, max_calls = self.cap(first[FN_KEY], len(outbox) + 1 + in_flight)
        calls, size = first[CALLS], len(first[PAYLOAD])
        while outbox and len(batch) < max_tasks and size < self.max_bytes:
            nxt = outbox[0]
            if nxt[FN_KEY] != first[FN_KEY] or calls + nxt[CALLS] > max_calls:
                break
            batch.append(outbox.popleft())
            calls += nxt[CALLS]
            size += len(nxt[PAYLOAD])
        return batch
