"""Doorbells: a waiting process sleeps in the kernel until a shared object changes.

Polling the arena with sleeps in between either burns a core (short sleeps,
spins) or wakes late (a sleep overshoots, and on a busy node a yielding
spinner waits a whole time slice for the CPU). A doorbell lets the waiter
sleep in ``futex(FUTEX_WAIT)`` and the process that changed the object wake
it at once, as a pipe's reader is woken by its writer: the scheduler then
runs the woken process promptly even when every core is busy.

The bells live outside the MPI window, in a small file of the head's run
directory (``bells``) that every process on the head's host maps: futex
needs an address of its own, and a window's memory moves at every growth
step. An object rings bell ``(offset // 64) % BELLS``: objects that share a
bell only cost each other a spurious wake. Each bell is a cache line with
two words: ``SEQ`` (the futex word, low 32 bits) and ``ARMED``.

Protocol (the arena itself still changes only through MPI atomics):

* a waiter *arms*: reads ``SEQ``, sets ``ARMED``, then a full fence; then it
  tries its operation once more, and only if that fails sleeps with
  ``FUTEX_WAIT(SEQ, seen)`` (for at most a bounded time);
* a waker, after its change is flushed (``MPI_Win_flush``, a full fence),
  reads ``ARMED``; only if it is set does it clear it, write a fresh
  ``SEQ`` and ``FUTEX_WAKE`` every sleeper of that bell.

Either the waiter's retry sees the change, or the waker sees ``ARMED`` (the
two fences order "set, then read" on both sides), and a waker that cleared
another waiter's fresh ``ARMED`` also changed ``SEQ`` after it, so that
waiter's sleep returns at once. Plain loads and stores suffice: no word is
incremented, and a fresh ``SEQ`` is random, so a stale one written late is
never mistaken for "nothing happened" (a waiter that did sleep through
would wake at its bound). A waker pays one memory read when nobody sleeps.

Processes on other hosts have no bells: their waits are parked at the head
(:mod:`.relayed`), and the changes they make ring the head's bells there.
On a kernel without futex (not Linux, or an architecture listed nowhere
below) :func:`available` is False and waits fall back to polling.
"""
from __future__ import annotations

import ctypes
import logging
import mmap
import os
import platform
import random
import time
from typing import Optional

import numpy as np

__all__ = ["BELLS", "Bells", "Wait", "asleep_on", "available", "bell_of", "create", "open_existing"]

log = logging.getLogger(__name__)

BELLS = 64
_LINE_WORDS = 8  # one bell per 64-byte cache line
SEQ, ARMED = 0, 1
FILE_NAME = "bells"
_BYTES = BELLS * _LINE_WORDS * 8

_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98, "ppc64le": 221, "ppc64": 221,
              "riscv64": 98, "s390x": 238}.get(platform.machine())
FUTEX_WAIT, FUTEX_WAKE = 0, 1
_WAKE_ALL = 0x7FFFFFFF


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_syscall = None
if _SYS_FUTEX is not None and os.name == "posix" and platform.system() == "Linux":
    try:
        _syscall = ctypes.CDLL(None, use_errno=True).syscall
        _syscall.restype = ctypes.c_long
    except (OSError, AttributeError):  # pragma: no cover - a libc without syscall()
        _syscall = None


def available() -> bool:
    """Whether this platform has futex (Linux on a known architecture)."""
    return _syscall is not None


def bell_of(offset: int) -> int:
    """The bell of the object at arena byte ``offset``."""
    return (offset >> 6) % BELLS


class Bells:
    """This process's mapping of the run's bell table."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._map = mmap.mmap(fd, _BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.words = np.frombuffer(self._map, np.int64)
        self._base = self.words.ctypes.data
        self._rand = random.Random(int.from_bytes(os.urandom(8), "little") ^ os.getpid())

    def seq(self, bell: int) -> int:
        return int(self.words[bell * _LINE_WORDS + SEQ]) & 0xFFFFFFFF

    def arm(self, bell: int) -> int:
        """Waiter, before its last try: the SEQ value to sleep on; sets ARMED (the caller fences next)."""
        i = bell * _LINE_WORDS
        seen = int(self.words[i + SEQ]) & 0xFFFFFFFF
        self.words[i + ARMED] = 1
        return seen

    def armed(self, bell: int) -> bool:
        return bool(self.words[bell * _LINE_WORDS + ARMED])

    def ring(self, bell: int) -> bool:
        """Waker, after a change is flushed: wake the bell's sleepers if one armed it; True if it did."""
        i = bell * _LINE_WORDS
        if not self.words[i + ARMED]:
            return False
        self.words[i + ARMED] = 0
        old = int(self.words[i + SEQ]) & 0xFFFFFFFF
        fresh = self._rand.getrandbits(32)
        while fresh == old:
            fresh = self._rand.getrandbits(32)
        self.words[i + SEQ] = fresh
        _futex(self._base + i * 8, FUTEX_WAKE, _WAKE_ALL, None)
        return True

    def sleep(self, bell: int, seen: int, timeout: float) -> None:
        """Sleep until the bell rings (or ``timeout`` seconds), unless SEQ is no longer ``seen``."""
        if timeout <= 0:
            return
        ts = _Timespec(int(timeout), int((timeout - int(timeout)) * 1e9))
        _futex(self._base + bell * _LINE_WORDS * 8, FUTEX_WAIT, seen, ctypes.byref(ts))

    def close(self) -> None:
        self.words = None
        try:
            self._map.close()
        except BufferError:  # a view is still alive somewhere: the mapping goes with the process
            pass


def _futex(addr: int, op: int, value: int, timeout) -> int:
    # EAGAIN (the word changed), ETIMEDOUT and EINTR (a signal: Python runs its handler
    # when the call returns) all mean "look again"; the callers loop.
    return _syscall(_SYS_FUTEX, ctypes.c_void_p(addr), ctypes.c_int(op), ctypes.c_uint32(value),
                    timeout, None, ctypes.c_uint32(0))


def create(run_dir: str) -> Optional[Bells]:
    """The head: make the run's bell table (zeroed, mode 0600) in ``run_dir``; None without futex."""
    if not available():
        log.debug("no futex on this platform (%s %s): shared-object waits poll", platform.system(),
                  platform.machine())
        return None
    path = os.path.join(run_dir, FILE_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, _BYTES)
        return Bells(path, fd)
    finally:
        os.close(fd)


def open_existing(run_dir: str) -> Optional[Bells]:
    """A member on the head's host: map the table the head made (OSError if it cannot)."""
    if not available():
        return None
    path = os.path.join(run_dir, FILE_NAME)
    fd = os.open(path, os.O_RDWR)
    try:
        return Bells(path, fd)
    finally:
        os.close(fd)


def asleep_on(pid: int) -> list[int]:
    """The bells that threads of process ``pid`` sleep on right now (diagnostics, tests).

    Read from ``/proc/PID/task/*/syscall`` (threads inside ``futex()``) and
    ``/proc/PID/maps`` (where that process mapped the bells file).
    """
    ranges = []
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            if line.rstrip().endswith("/" + FILE_NAME):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                ranges.append((lo, hi))
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as fh:
                fields = fh.read().split()
        except OSError:  # the thread ended meanwhile
            continue
        if len(fields) > 1 and fields[0] == str(_SYS_FUTEX):
            address = int(fields[1], 16)
            found += [(address - lo) // (_LINE_WORDS * 8) for lo, hi in ranges if lo <= address < hi]
    return found


class Wait:
    """The pause of one waiting loop: spin, then arm the bell, then sleep on it.

    The loop calls :meth:`pause` after each failed try. While the spin lasts
    it returns at once (yielding the core if ``yield_cpu``). After that,
    the first pause arms the bell and returns, so the loop tries once more
    (the try that cannot miss a change, see the module's protocol); the next
    one sleeps until the bell rings, for at most ``cap`` seconds or until the
    deadline, then the cycle repeats. Without bells it falls back to
    ``fallback`` (a :class:`~mpigroup.base.waiting.Backoff`).
    """

    __slots__ = ("bells", "bell", "fence", "spin", "yield_cpu", "cap", "fallback", "spin_until", "seen")

    def __init__(self, bells: Optional[Bells], bell: int, fence, spin: float, yield_cpu: bool,
                 cap: float, fallback) -> None:
        self.bells, self.bell, self.fence = bells, bell, fence
        self.spin, self.yield_cpu, self.cap, self.fallback = spin, yield_cpu, cap, fallback
        self.spin_until = time.perf_counter() + spin if spin > 0 else 0.0
        self.seen: Optional[int] = None

    def reset(self) -> None:
        """After progress: the next wait starts with its spin again."""
        self.spin_until = time.perf_counter() + self.spin if self.spin > 0 else 0.0
        self.seen = None
        if self.fallback is not None:
            self.fallback.reset()

    def pause(self, deadline: Optional[float] = None) -> None:
        if self.spin_until:
            if time.perf_counter() < self.spin_until:
                if self.yield_cpu:
                    os.sched_yield()
                return
            self.spin_until = 0.0
        if self.bells is None:
            self.fallback.pause(deadline)
            return
        if self.seen is None:
            self.seen = self.bells.arm(self.bell)
            self.fence()  # the loop's next try reads the object only after ARMED is visible
            return
        left = self.cap if deadline is None else min(self.cap, deadline - time.monotonic())
        self.bells.sleep(self.bell, self.seen, left)
        self.seen = None
