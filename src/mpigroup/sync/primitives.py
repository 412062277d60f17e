"""Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Barrier over RMA.

Each is one or two int64 words of the arena, changed only with
``MPI_Compare_and_swap``/``MPI_Fetch_and_op``; waiting spins briefly, then
sleeps on the object's doorbell (:mod:`.bells`) until a change rings it, so
idle waiters leave the CPU to working ranks and wake as soon as a pipe's
reader would.

A lock word holds its owner's token (node, pid, thread). A waiter that finds
the owner's process gone (same node) raises :class:`LockOwnerDied` instead of
waiting forever; every blocking call also takes a timeout.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from ..base.waiting import deadline_after, expired, remaining
from ..errors import LockOwnerDied
from . import owners, relayed, rma, universe

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "LockOwnerDied", "RLock", "Semaphore",
           "SharedWords"]

SEM_VALUE_MAX = (1 << 31) - 1


def _token() -> int:
    """This thread's lock token: its process's owner ident (host-aware, :mod:`.owners`) and thread."""
    return (owners.me() << 22) | (threading.get_ident() & 0x3FFFFF) | 1


def _owner(token: int) -> int:
    return token >> 22


def _deadline(block: bool, timeout: Optional[float]) -> Optional[float]:
    """As ``threading``'s locks: a negative timeout is "now", a non-blocking call tries once."""
    return deadline_after(timeout if block else 0.0)


def _wait_until(attempt: Callable[[universe.Universe], Any], bell: int, deadline: Optional[float],
                on_idle: Optional[Callable[[], None]] = None, shipped: Optional[tuple] = None) -> Any:
    """Call ``attempt`` (under the step lock) until it returns non-None or the deadline passes,
    sleeping on the object's doorbell ``bell`` in between (:func:`universe.waiter`).

    ``shipped`` = (operation, condition) is the same attempt for a process on
    another host (:mod:`.relayed`): it waits at the head, not by polling it.
    """
    uni = universe.current()
    if uni.remote and shipped is not None:
        return _wait_at_head(uni, shipped, deadline, on_idle)
    with uni.lock:
        result = attempt(uni)
    if result is not None:  # the common case: no wait
        return result
    wait = universe.waiter(bell)
    next_idle = time.monotonic() + 1.0
    while True:
        if expired(deadline):
            return None
        if on_idle is not None and time.monotonic() > next_idle:
            on_idle()
            next_idle = time.monotonic() + 1.0
        wait.pause(deadline)
        uni = universe.current()
        with uni.lock:
            result = attempt(uni)
        if result is not None:
            return result


def _wait_at_head(uni: Any, shipped: tuple, deadline: Optional[float],
                  on_idle: Optional[Callable[[], None]]) -> Optional[bool]:
    op, until = shipped
    while True:
        left = remaining(deadline)
        if relayed.met(uni.wait([op], until, relayed.PARK_MAX if left is None else left), until):
            return True
        if expired(deadline):
            return None
        if on_idle is not None:  # each park lasts at most PARK_MAX: check the owner between them
            on_idle()


class Event(rma.SharedObject):
    """``multiprocessing.Event``: one flag word."""

    _words = 1

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__()

    def _restore(self) -> None:
        pass

    def is_set(self) -> bool:
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._word(0)) != 0

    def set(self) -> None:
        uni = universe.current()
        with uni.lock:
            rma.store(uni, self._word(0), 1)
            rma.notify(uni, self._bell)

    def clear(self) -> None:
        uni = universe.current()
        with uni.lock:
            rma.store(uni, self._word(0), 0)

    def wait(self, timeout: Optional[float] = None) -> bool:
        got = _wait_until(lambda uni: True if rma.load(uni, self._word(0)) else None, self._bell,
                          _deadline(True, timeout), shipped=((relayed.LOAD, self._word(0), 1), (relayed.TRUE,)))
        return bool(got)

    def __repr__(self) -> str:
        return f"<Event at arena+{self._offset} {'set' if self.is_set() else 'unset'}>"


class Semaphore(rma.SharedObject):
    """``multiprocessing.Semaphore``: word 0 is the value."""

    _words = 2  # value, bound (0: unbounded)

    def __init__(self, value: int = 1, *, ctx: Any = None, _bound: int = 0) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        super().__init__(_init={0: value, 1: _bound})

    def _restore(self) -> None:
        pass

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        return bool(_wait_until(lambda uni: rma.take(uni, self._word(0)) or None, self._bell,
                                _deadline(block, timeout),
                                shipped=((relayed.TAKE, self._word(0)), (relayed.TRUE,))))

    def release(self) -> None:
        uni = universe.current()
        with uni.lock:
            bound = rma.load(uni, self._word(1))
            while True:
                v = rma.load(uni, self._word(0))
                if bound and v >= bound:
                    raise ValueError("semaphore or lock released too many times")
                if v >= SEM_VALUE_MAX:
                    raise OverflowError("semaphore value would exceed SEM_VALUE_MAX")
                if rma.cas(uni, self._word(0), v, v + 1) == v:
                    rma.notify(uni, self._bell)
                    return

    def get_value(self) -> int:
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._word(0))

    def _is_zero(self) -> bool:
        return self.get_value() == 0

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(value={self.get_value()})>"


class BoundedSemaphore(Semaphore):
    """``multiprocessing.BoundedSemaphore``: release past the initial value raises."""

    def __init__(self, value: int = 1, *, ctx: Any = None) -> None:
        super().__init__(value, _bound=value)


class Lock(rma.SharedObject):
    """``multiprocessing.Lock``: word 0 is the owner's token (0 when free)."""

    _words = 2  # owner, recursion count (RLock)

    def __init__(self, *, ctx: Any = None) -> None:
        super().__init__()

    def _restore(self) -> None:
        pass

    def _holder(self) -> int:
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._word(0))

    def _owner_gone(self) -> None:
        uni = universe.current()
        with uni.lock:
            owner = rma.load(uni, self._word(0))
        if owner and owners.gone(_owner(owner), lambda: self._holder() == owner):
            raise LockOwnerDied(f"{type(self).__name__} is held by {owners.describe(_owner(owner))}, "
                                "which has exited without releasing it")

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        me = _token()
        got = _wait_until(lambda uni: True if rma.cas(uni, self._word(0), 0, me) == 0 else None, self._bell,
                          _deadline(block, timeout), self._owner_gone,
                          shipped=((relayed.CAS, self._word(0), 0, me), (relayed.EQUALS, 0)))
        return bool(got)

    def release(self) -> None:
        uni = universe.current()
        with uni.lock:
            owner = rma.load(uni, self._word(0))
            if owner == 0:
                raise ValueError("semaphore or lock released too many times")
            rma.store(uni, self._word(0), 0)
            rma.notify(uni, self._bell)

    def _is_mine(self) -> bool:
        return self._holder() == _token()

    def _release_all(self) -> int:
        self.release()
        return 1

    def _reacquire(self, count: int) -> None:
        self.acquire()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args) -> None:
        self.release()

    def __repr__(self) -> str:
        uni = universe.current()
        with uni.lock:
            owner = rma.load(uni, self._word(0))
        state = "unlocked" if not owner else ("owned by this thread" if owner == _token()
                                               else f"locked by {owners.describe(_owner(owner))}")
        return f"<{type(self).__name__} {state}>"


class RLock(Lock):
    """``multiprocessing.RLock``: the owner may acquire again; word 1 counts."""

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        me = _token()

        def attempt(uni):
            old = rma.cas(uni, self._word(0), 0, me)
            if old == 0 or old == me:
                rma.add(uni, self._word(1), 1)
                return True
            return None

        return bool(_wait_until(attempt, self._bell, _deadline(block, timeout), self._owner_gone))

    def release(self) -> None:
        uni = universe.current()
        with uni.lock:
            owner, count = rma.load(uni, self._word(0), 2)
            if owner != _token() or count <= 0:
                raise AssertionError("attempt to release recursive lock not owned by thread")
            if count == 1:
                rma.store(uni, self._word(1), 0)
                rma.store(uni, self._word(0), 0)
                rma.notify(uni, self._bell)
            else:
                rma.add(uni, self._word(1), -1)

    def _count(self) -> int:
        uni = universe.current()
        with uni.lock:
            owner, count = rma.load(uni, self._word(0), 2)
        return count if owner == _token() else 0

    def _release_all(self) -> int:
        count = self._count()
        uni = universe.current()
        with uni.lock:
            rma.store(uni, self._word(1), 0)
            rma.store(uni, self._word(0), 0)
            rma.notify(uni, self._bell)
        return count

    def _reacquire(self, count: int) -> None:
        self.acquire()
        if count > 1:
            uni = universe.current()
            with uni.lock:
                rma.add(uni, self._word(1), count - 1)


class Condition:
    """``multiprocessing.Condition``: the semaphore algorithm multiprocessing uses.

    Sleepers count themselves in ``_sleeping_count``, wait on ``_wait_semaphore``
    and report in ``_woken_count``; a notifier hands out permits and waits
    until that many sleepers woke, so a notification is never lost and never
    wakes a thread that started waiting after it.
    """

    def __init__(self, lock: Optional[Lock] = None, *, ctx: Any = None) -> None:
        self._lock = lock if lock is not None else RLock()
        self._sleeping_count = Semaphore(0)
        self._woken_count = Semaphore(0)
        self._wait_semaphore = Semaphore(0)
        self._make_methods()

    def _make_methods(self) -> None:
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __getstate__(self):
        return (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore)

    def __setstate__(self, state) -> None:
        self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore = state
        self._make_methods()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def wait(self, timeout: Optional[float] = None) -> bool:
        assert self._lock._is_mine(), "must acquire() condition before using wait()"
        self._sleeping_count.release()
        count = self._lock._release_all()
        try:
            return self._wait_semaphore.acquire(True, timeout)
        finally:
            self._woken_count.release()
            self._lock._reacquire(count)

    def notify(self, n: int = 1) -> None:
        assert self._lock._is_mine(), "lock is not owned"
        assert not self._wait_semaphore.acquire(False)
        while self._woken_count.acquire(False):  # account for sleepers that timed out
            assert self._sleeping_count.acquire(False)
        sleepers = 0
        while sleepers < n and self._sleeping_count.acquire(False):
            self._wait_semaphore.release()
            sleepers += 1
        if sleepers:
            for _ in range(sleepers):
                self._woken_count.acquire()
            while self._wait_semaphore.acquire(False):  # take back permits of sleepers that timed out
                pass

    def notify_all(self) -> None:
        self.notify(n=SEM_VALUE_MAX)

    def wait_for(self, predicate: Callable[[], Any], timeout: Optional[float] = None) -> Any:
        result = predicate()
        if result:
            return result
        deadline = None if timeout is None else time.monotonic() + timeout
        while not result:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.wait(remaining)
            else:
                self.wait()
            result = predicate()
        return result

    def __repr__(self) -> str:
        return f"<Condition({self._lock!r})>"


class SharedWords(rma.SharedObject):
    """``n`` shared int64 words, each read and written atomically (Barrier state, pool slots)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("SharedWords needs at least one word")
        self._words = n
        super().__init__()

    def _params(self) -> tuple:
        return (self._words,)

    def _restore(self, n: int) -> None:
        self._words = n

    def __len__(self) -> int:
        return self._words

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self._words:
            raise IndexError(i)
        uni = universe.current()
        with uni.lock:
            return rma.load(uni, self._word(i))

    def __setitem__(self, i: int, value: int) -> None:
        if not 0 <= i < self._words:
            raise IndexError(i)
        uni = universe.current()
        with uni.lock:
            rma.store(uni, self._word(i), value)
            rma.notify(uni, self._bell)


class Barrier(threading.Barrier):
    """``multiprocessing.Barrier``: threading's algorithm over a shared Condition.

    As multiprocessing does, only ``_state`` and ``_count`` move into shared
    memory (two arena words); ``parties``, ``n_waiting``, ``broken``,
    ``abort`` and ``reset`` come from ``threading.Barrier``.
    """

    def __init__(self, parties: int, action: Optional[Callable] = None, timeout: Optional[float] = None,
                 *, ctx: Any = None) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self.__setstate__((parties, action, timeout, Condition(Lock()), SharedWords(2)))

    def __setstate__(self, state) -> None:
        (self._parties, self._action, self._timeout, self._cond, self._array) = state

    def __getstate__(self):
        return (self._parties, self._action, self._timeout, self._cond, self._array)

    @property
    def _state(self) -> int:
        return self._array[0]

    @_state.setter
    def _state(self, value: int) -> None:
        self._array[0] = value

    @property
    def _count(self) -> int:
        return self._array[1]

    @_count.setter
    def _count(self, value: int) -> None:
        self._array[1] = value
