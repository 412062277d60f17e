"""The head's side of the universe: arena allocation and membership steps.

One thread runs the steps in order; each join gets a port and a step of its
own (a whole spawned set at once). Members that exited are dropped by the
step's ULFM shrink; nobody waits for them.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import SharedObjectError, ShuttingDown
from ..runtime import requests
from . import owners, relayed, universe
from .arena import Arena
from .mpi import MPI
from .universe import TAG_STEP, StepMessage, Universe, arena_bytes

log = logging.getLogger(__name__)


@dataclass
class _Join:
    """One queued growth step: the puids it admits and the port they connect to."""

    puids: list
    port: str


class UniverseHead:
    """Allocates arena blocks and admits members (one thread runs the growth steps)."""

    def __init__(self, uni: Universe, ctx: Any) -> None:
        self.universe = uni
        self.ctx = ctx
        self.size = arena_bytes()
        self.arena = Arena(self.size)
        self._arena_lock = threading.Lock()
        self.members: list[int] = [0]  # puid per universe rank; 0 is the head
        self._work: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self._sends: list = []
        self.failure: Optional[BaseException] = None  # why the step thread stopped, if it did
        self._thread = threading.Thread(target=self._run, name="mpigroup-universe-head", daemon=True)
        self.universe._free_block = self.free

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """No more steps; wait for one in progress (its newcomers must still be alive)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---------------------------------------------------------------- arena
    def allocate(self, nbytes: int) -> int:
        """An arena block of ``nbytes``; its offset (ArenaFull if none is free)."""
        with self._arena_lock:
            return self.arena.allocate(nbytes)

    def _high_water(self) -> int:
        """Read when every member is inside the step: a block allocated just before is included."""
        with self._arena_lock:
            return self.arena.high_water

    def free(self, offset: int) -> None:
        """Return the block at ``offset`` to the arena."""
        with self._arena_lock:
            self.arena.free(offset)

    # ---------------------------------------------------------- membership
    def request_join(self, puids: list[int]) -> str:
        """Queue a step that admits ``puids`` (one spawned set, or one process); returns its port."""
        if self._stop.is_set():
            raise ShuttingDown("the run is shutting down: no more universe steps")
        if self.failure is not None or not self._thread.is_alive():
            raise SharedObjectError(f"the universe head's step thread has stopped "
                                    f"({type(self.failure).__name__}: {self.failure}): no process can join "
                                    "the shared-object universe any more") from self.failure
        known = set(self.members)
        already = [p for p in puids if p in known]
        if already:  # an internal error: a process asks to join once
            raise SharedObjectError(f"processes {already} are already members of the universe")
        port = MPI.Open_port()
        self._work.put(_Join(list(puids), port))
        return port

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:
            self.failure = exc
            log.error("the universe head's step thread stopped: no process can join the shared-object "
                      "universe any more", exc_info=True)

    def _serve(self) -> None:
        uni = self.universe
        while not self._stop.is_set():
            try:
                join = self._work.get(timeout=0.02)
            except queue.Empty:
                uni.process_releases()
                continue
            try:
                self._step(join)
            except Exception:
                log.error("universe step failed (processes %s were not admitted)", join.puids, exc_info=True)

    def _step(self, join: _Join) -> None:
        uni = self.universe
        with uni.lock:
            msg = StepMessage(join.port)
            self._sends = [r for r in self._sends if not _done(r)]  # a gone member's may never complete
            self._sends += [uni.comm.isend(msg, dest=r, tag=TAG_STEP) for r in range(1, uni.comm.Get_size())]
            dead = uni.take_step(join.port, self.size, self._high_water)
        self.members = [p for r, p in enumerate(self.members) if r not in set(dead)] + list(join.puids)
        MPI.Close_port(join.port)


def _done(request) -> bool:
    try:
        return request.Test()
    except MPI.Exception:
        return True


def _head() -> UniverseHead:
    return universe.head_service()


_relayed_server: Optional[relayed.RelayedServer] = None
_server_lock = threading.Lock()


def _apply(ops: list) -> Any:
    return relayed.apply(universe.current(), ops, _head().free)


def _server() -> relayed.RelayedServer:
    global _relayed_server
    if _relayed_server is None:
        with _server_lock:
            if _relayed_server is None:
                _relayed_server = relayed.RelayedServer(_apply)
    return _relayed_server


def _ship(ops: list, until: Optional[tuple] = None, park: float = 0.0) -> Any:
    """A relayed process's operations: handed to the RelayedServer thread, answered from there."""
    reply = requests.take_reply(optional=True)  # None: a posted request, nobody waits
    _server().submit(ops, until, park, reply)
    return requests.DEFERRED


def _drain(head) -> Any:
    """Answered once every shipped operation received before it is applied (see owners.gone)."""
    reply = requests.take_reply(optional=True)
    if reply is not None:
        _server().submit([], None, 0.0, reply)
        return requests.DEFERRED
    done = threading.Event()  # asked on the head itself: wait here (never on the relayed-ops thread)
    _server().submit([], None, 0.0, lambda ok, value: done.set())
    if not done.wait(60.0):
        raise SharedObjectError("the head's shipped operations did not drain within 60 s")
    return None


# the head requests of the universe (see mpigroup.runtime.requests.register_provider)
HEAD_OPERATIONS = {
    "universe_join": lambda head, puids: _head().request_join(puids),
    "arena_alloc": lambda head, nbytes: _head().allocate(nbytes),
    "arena_free": lambda head, offset: _head().free(offset),
    # processes on other hosts: their arena operations, and liveness of a pid of this host
    "rma": lambda head, ops: _ship(ops),
    "rma_wait": lambda head, ops, until, park: _ship(ops, until, park),
    "rma_drain": _drain,
    "pid_gone": owners.head_pid_gone,
}
