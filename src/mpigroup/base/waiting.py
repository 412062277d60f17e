"""Deadlines and the one waiting policy of every polling loop in mpigroup.

A deadline is a ``time.monotonic()`` value, or ``None`` for "wait forever".
:class:`Backoff` is how a loop waits between two polls: an optional spin
(no sleep, optionally yielding the CPU) that keeps round trips in the
microseconds while the other side is active, then sleeps that double from
``initial`` up to ``maximum``, so an idle waiter costs little CPU (on 2
cores, 8 waiters must not starve the workers). Like ``mpi4py.util.sync``'s
backoff, whose cap is near 1 ms.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

__all__ = ["Backoff", "deadline_after", "deadline_for", "expired", "remaining"]


def deadline_after(timeout: Optional[float]) -> Optional[float]:
    """The deadline ``timeout`` seconds from now (``None``: no deadline; a negative timeout: now)."""
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def deadline_for(block: bool, timeout: Optional[float]) -> Optional[float]:
    """The deadline of a ``get(block, timeout)``-style call; a negative timeout is a ``ValueError``.

    Non-blocking calls get "now": they try once.
    """
    if not block:
        return time.monotonic()
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return time.monotonic() + timeout


def expired(deadline: Optional[float]) -> bool:
    """Whether ``deadline`` has passed (never for ``None``)."""
    return deadline is not None and time.monotonic() >= deadline


def remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline`` (never below 0; ``None`` for no deadline)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Backoff:
    """Spin for ``spin`` seconds, then sleep from ``initial`` doubling up to ``maximum`` per pause.

    ``yield_cpu`` makes each spin step a ``sched_yield()``, so a spinner
    hands its core to the process it waits for when cores are short.
    A pause never sleeps past ``deadline``. :meth:`reset` starts over (after progress).
    ``pause(sleep=...)`` sleeps with another function of the delay, e.g. an
    ``Event.wait`` that others can cut short.
    """

    __slots__ = ("spin", "initial", "maximum", "yield_cpu", "spin_until", "delay")

    def __init__(self, spin: float = 0.0, initial: float = 20e-6, maximum: float = 1e-3,
                 yield_cpu: bool = False) -> None:
        self.spin = spin
        self.initial = min(initial, maximum)
        self.maximum = maximum
        self.yield_cpu = yield_cpu
        self.spin_until = time.perf_counter() + spin if spin > 0 else 0.0
        self.delay = self.initial

    def reset(self) -> None:
        self.spin_until = time.perf_counter() + self.spin if self.spin > 0 else 0.0
        self.delay = self.initial

    def pause(self, deadline: Optional[float] = None, sleep: Callable[[float], object] = time.sleep) -> None:
        if self.spin_until and time.perf_counter() < self.spin_until:
            if self.yield_cpu:
                os.sched_yield()
            return
        delay = self.delay
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        sleep(delay)
        self.delay = min(self.maximum, self.delay * 2)
