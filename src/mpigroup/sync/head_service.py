"""The head's side of the universe: arena allocation and membership steps.

One thread runs the steps in order. Joins get a port each (one step per
join, the whole spawned set at once); leaves are batched into the next step.
The head knows which members died from its process table, and tells the
survivors to drop them.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Optional

from mpi4py import MPI

from .arena import Arena
from .universe import TAG_STEP, SpinWait, Universe, arena_bytes


@dataclass
class _Join:
    puids: list
    port: str


@dataclass
class _Leave:
    puid: int
    done: threading.Event = field(default_factory=threading.Event)


class UniverseHead:
    """Allocates arena blocks and admits or releases members."""

    def __init__(self, universe: Universe, ctx) -> None:
        self.universe = universe
        self.ctx = ctx
        self.size = arena_bytes()
        self.arena = Arena(self.size)
        self._arena_lock = threading.Lock()
        self._steps = 0
        self.members: list[int] = [0]  # puid per universe rank; 0 is the head
        self._work: "queue.Queue" = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mpigroup-universe-head", daemon=True)
        self.universe._free_block = self.free

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- arena
    def allocate(self, nbytes: int) -> int:
        with self._arena_lock:
            return self.arena.allocate(nbytes)

    def free(self, offset: int) -> None:
        with self._arena_lock:
            self.arena.free(offset)

    # ---------------------------------------------------------- membership
    def request_join(self, puids: list[int]) -> str:
        """Queue a step that admits ``puids`` (one spawned set, or one process); returns its port."""
        known = set(self.members)
        already = [p for p in puids if p in known]
        if already:
            raise RuntimeError(f"processes {already} are already members of the universe")
        port = MPI.Open_port()
        self._work.put(_Join(list(puids), port))
        return port

    def request_leave(self, puid: int, timeout: float = 120.0) -> None:
        """Queue ``puid``'s leave and return when the step that releases it is over."""
        leave = _Leave(puid)
        self._work.put(leave)
        if not leave.done.wait(timeout):
            raise TimeoutError(f"universe step releasing process {puid} did not finish in {timeout} s")

    def _run(self) -> None:
        uni = self.universe
        wait = SpinWait(spin=0.0, maximum=20e-3)
        while not self._stop.is_set():
            try:
                item = self._work.get(timeout=0.02)
            except queue.Empty:
                uni.process_releases()
                continue
            leaves = [item] if isinstance(item, _Leave) else []
            join = item if isinstance(item, _Join) else None
            while True:  # batch every leave already queued (and at most one join)
                try:
                    more = self._work.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, _Leave):
                    leaves.append(more)
                elif join is None:
                    join = more
                else:
                    self._work.put(more)
                    break
            try:
                self._step(join, leaves)
            except Exception:
                import traceback

                print("mpigroup head: universe step failed:\n" + traceback.format_exc(), flush=True)
            finally:
                for lv in leaves:
                    lv.done.set()
            wait.pause()

    def _dead_ranks(self, leaving: set) -> list[int]:
        head = self.ctx.head
        dead = []
        with head._lock:
            for rank, puid in enumerate(self.members):
                if rank == 0 or puid in leaving:
                    continue
                rec = head.members.get(puid)
                if rec is None or rec.state == "exited":
                    dead.append(rank)
        return dead

    def _step(self, join: Optional[_Join], leaves: list[_Leave]) -> None:
        uni = self.universe
        leaving = {lv.puid for lv in leaves}
        leaver_ranks = [r for r, p in enumerate(self.members) if p in leaving]
        dead = self._dead_ranks(leaving)
        if join is None and not leaver_ranks and not dead:
            return
        port = join.port if join else None
        with self._arena_lock:
            copy_upto = self.arena.high_water
        with uni.lock:
            self._steps += 1
            tag = self._steps % 30000 + 1  # Create_group tag: the same in every member
            msg = ("step", port, leaver_ranks, dead, tag)
            reqs = [uni.comm.isend(msg, dest=r, tag=TAG_STEP)
                    for r in range(1, uni.comm.Get_size()) if r not in dead]
            MPI.Request.Waitall(reqs)
            dead = uni.take_step(port, leaver_ranks, dead, tag, self.size, copy_upto)
        gone = set(leaver_ranks) | set(dead)
        self.members = [p for r, p in enumerate(self.members) if r not in gone]
        if join:
            self.members.extend(join.puids)
            MPI.Close_port(join.port)
        for lv in leaves:
            lv.done.set()
