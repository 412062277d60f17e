"""Shared objects from a process on another host than the head: operations shipped to the head.

Why (measured, docs/architecture.md "Shared objects across hosts"): a process
on another host never has an MPI connection to the head (Open MPI 5.0.x
cannot connect a job spawned later on one host to an older job on another;
see :mod:`mpigroup.runtime.relay`), so it cannot reach the arena window. It
already has an ordered channel to the head: its node agent, which relays
frames over ``COMM_WORLD``. So every arena operation of such a process
travels there as a small request, and the head's service thread applies it
to the arena with the same code as every local operation:

* word operations whose result is needed (fetch-and-add, compare-and-swap,
  atomic loads, gets) wait for the answer: one round trip;
* stores, adds and puts are *posted*: sent, not answered. The channel is
  ordered and the head applies requests in order, so a later answered
  operation of the same process sees them, exactly as a flush would;
* a ring's one-step put and get (what a small ``Queue.put``/``get`` is) run
  whole on the head (:func:`ring_step`), so a small message costs one round
  trip, not the five or six operations of the local path.

Owners recorded in lock words are host-aware (:mod:`.owners`), so a lock
taken here and held while this host is lost raises ``LockOwnerDied`` on the
survivors. Nothing here imports MPI: such a process never initialises it.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Optional, Sequence

from .bells import bell_of

log = logging.getLogger(__name__)

# one-letter operation codes on the wire (a request is a list of them, applied in order)
FETCH_ADD, LOAD, STORE, ADD, CAS, PUT, GET, RELEASE, RING = "f", "l", "s", "a", "c", "p", "g", "r", "R"
TAKE = "t"  # a semaphore's acquire: decrement the word if it is positive; True if it did
NOTIFY = "n"  # ring a doorbell of the head's host (:mod:`.bells`): a change its sleepers wait for

# when a parked wait (RelayedUniverse.wait) is over: its last operation's result ...
EQUALS, DIFFERS, TRUE, RING_READY = "eq", "ne", "true", "ring"  # ... == value, != value, truthy, a frame/put
PARK_MAX = 0.25  # seconds a wait stays parked at the head before its caller checks its deadline and peers


class RelayedUniverse:
    """What :func:`mpigroup.sync.universe.current` is in a process on another host.

    It has the members the rest of ``sync`` uses (``lock``, ``left``,
    ``failure``, ``defer_release``, ``process_releases``) and ``remote``,
    which :mod:`.rma` checks to ship an operation instead of applying it.
    """

    remote = True
    mem = words = bells = None  # no arena memory and no doorbells here: everything travels to the head

    def __init__(self, api: Any) -> None:
        self.api = api
        self.lock = threading.RLock()
        self.left = threading.Event()
        self.failure: Optional[BaseException] = None
        self._releases: list[tuple[int, int]] = []
        self._release_lock = threading.Lock()

    def call(self, *ops: tuple) -> Any:
        """Apply ``ops`` on the head, in order, and return the last one's result."""
        return self.api.call("rma", ops=self._take_releases() + list(ops))

    def wait(self, ops: list, until: tuple, timeout: float) -> Any:
        """Apply ``ops`` on the head until the last result meets ``until`` or ``timeout`` (at most
        :data:`PARK_MAX`) passes, waiting there, not here; returns the last result."""
        park = max(0.0, min(timeout, PARK_MAX))
        return self.api.call("rma_wait", ops=self._take_releases() + ops, until=until, park=park,
                             timeout=park + 60.0)

    def post(self, *ops: tuple) -> None:
        """Send ``ops`` without waiting: the next :meth:`call` is applied after them."""
        self.api.post("rma", ops=list(ops))

    # -------------------------------------------------------- releases
    def defer_release(self, offset: int, generation: int) -> None:
        """Called from handle finalizers (any thread, any time): sent with the next request."""
        with self._release_lock:
            self._releases.append((offset, generation))

    def _take_releases(self) -> list:
        if not self._releases:
            return []
        with self._release_lock:
            todo, self._releases = self._releases, []
        return [(RELEASE, offset, generation) for offset, generation in todo]

    def process_releases(self) -> bool:
        releases = self._take_releases()
        if releases and not self.left.is_set():
            self.api.post("rma", ops=releases)
        return bool(releases)


def apply(uni: Any, ops: Sequence[tuple], free: Callable[[int], None]) -> Any:
    """The head's side: apply shipped operations to its own arena (caller: the head's request handler)."""
    from . import rma  # rma imports universe, which imports this module

    result = None
    with uni.lock:
        for op in ops:
            code = op[0]
            if code == LOAD:
                result = rma.load(uni, op[1], op[2])
            elif code == STORE:
                rma.store(uni, op[1], op[2])
            elif code == ADD:
                rma.add(uni, op[1], op[2])
            elif code == FETCH_ADD:
                result = rma.fetch_add(uni, op[1], op[2])
            elif code == CAS:
                result = rma.cas(uni, op[1], op[2], op[3])
            elif code == PUT:
                rma.put(uni, op[1], op[2])
                rma.flush(uni)
            elif code == GET:
                out = bytearray(op[2])
                rma.get(uni, op[1], out)
                rma.flush(uni)
                result = out
            elif code == RING:
                result = ring_step(*op[1:])
            elif code == TAKE:
                result = rma.take(uni, op[1])
            elif code == NOTIFY:
                rma.notify(uni, op[1])
            elif code == RELEASE:
                if rma.drop_reference(uni, op[1], op[2]):
                    free(op[1])
            else:
                raise ValueError(f"unknown shipped arena operation {code!r}")
    return result


def ring_step(cls: type, ref: tuple, guess: tuple, step: str, args: tuple) -> tuple:
    """Run a ring's one-step put (``"put"``) or get (``"get"``) on the head for a relayed process.

    ``guess`` carries the caller's last-seen positions (a single-reader ring's
    reader is the only one that knows its read position); the new ones come
    back with the result, so the caller's handle stays in step.
    """
    from .ring import RPOS, WPOS  # ring imports this module

    ring = cls.__new__(cls)
    ring._restore(*ref[2:4])
    ring._offset, ring._generation = ref[0], ref[1]
    ring._bell = bell_of(ref[0])  # a borrowed handle (no reference counted): what _attach would set
    ring._guess[WPOS], ring._guess[RPOS] = guess
    if step == "put":
        pieces, size, count = args
        result: Any = ring._try_put_small([memoryview(pieces)], size, count)
    elif step == "get":
        owner, = args
        result = ring._try_get_small(owner)
        if result is ring._EMPTY:
            result = "empty"
        elif isinstance(result, memoryview):
            result = bytes(result)
        elif isinstance(result, tuple):
            result = (result[0], bytes(result[1]))
    else:
        raise ValueError(f"unknown ring step {step!r}")
    return result, (ring._guess[WPOS], ring._guess[RPOS])


def met(result: Any, until: tuple) -> bool:
    """Whether a parked wait's last result ends it."""
    kind = until[0]
    if kind == EQUALS:
        return result == until[1]
    if kind == DIFFERS:
        return result != until[1]
    if kind == TRUE:
        return bool(result)
    if kind == RING_READY:  # a ring step: (result, positions); a get found a frame, a put fitted
        return result[0] not in ("empty", None, False)
    raise ValueError(f"unknown wait condition {until!r}")


class RelayedServer:
    """The head's side of every shipped operation: one thread applies them, in arrival order.

    The head's service thread only hands requests over (it must never wait for
    the arena's step lock: a growth step can be waiting for a worker that in
    turn waits for the service thread). Operations are applied in the order
    they came, so a process's posted operations are in place before its next
    answered one. A blocking one that cannot succeed yet is *parked*: retried
    on the head's own memory (20 us doubling to 100 us while requests keep
    coming, to 1 ms after 20 ms without one, reset by every new request), and
    answered the moment it succeeds, or when its park time is over.
    """

    def __init__(self, apply_ops: Callable[[list], Any]) -> None:
        self._apply = apply_ops
        self._inbox: collections.deque = collections.deque()
        self._parked: list = []
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mpigroup-relayed-ops", daemon=True)
        self._thread.start()

    def submit(self, ops: list, until: Optional[tuple], park: float,
               reply: Optional[Callable[[bool, Any], None]]) -> None:
        """Queue ``ops``; ``reply`` (None for a posted request) gets the result once they are done."""
        self._inbox.append((ops, until, park, reply))
        self._wake.set()

    def _run(self) -> None:
        delay, busy_at = 20e-6, 0.0
        while True:
            if not self._inbox:
                self._wake.wait(delay if self._parked else None)
            if self._wake.is_set():
                self._wake.clear()
                delay, busy_at = 20e-6, time.monotonic()
            while self._inbox:
                ops, until, park, reply = self._inbox.popleft()
                result = self._attempt(ops, reply)
                if result is _FAILED:
                    continue
                if until is None or park <= 0 or met(result, until):
                    if reply is not None:
                        _answer(reply, True, result)
                    continue
                retry = [op for op in ops if op[0] != RELEASE]  # references are dropped once
                self._parked.append((retry, until, time.monotonic() + park, reply))
            if not self._parked:
                continue
            now, keep = time.monotonic(), []
            for entry in self._parked:
                ops, until, deadline, reply = entry
                result = self._attempt(ops, reply)
                if result is _FAILED:
                    continue
                if met(result, until) or now >= deadline:
                    _answer(reply, True, result)
                else:
                    keep.append(entry)
            self._parked = keep
            # while requests flow (a ping-pong), the answer is usually due within a round
            # trip: retry every 100 us then; after 20 ms without a request, back off to 1 ms
            delay = min(100e-6 if now - busy_at < 0.02 else 1e-3, delay * 2)

    def _attempt(self, ops: list, reply: Optional[Callable[[bool, Any], None]]) -> Any:
        try:
            return self._apply(ops)
        except BaseException as exc:  # noqa: BLE001 - the caller re-raises it (a posted one: logged)
            if reply is not None:
                _answer(reply, False, exc)
            else:
                log.error("a shipped arena operation failed: %s", exc)
            return _FAILED


_FAILED = object()


def _answer(reply: Callable[[bool, Any], None], ok: bool, value: Any) -> None:
    """Send one answer; a failure to send it (its requester's host is gone) must not stop the
    thread that serves every other process's operations."""
    try:
        reply(ok, value)
    except Exception:  # noqa: BLE001 - logged; the requester's loss is reported on its own path
        log.warning("the answer to a shipped arena operation could not be sent", exc_info=True)
