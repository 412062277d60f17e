"""Global services on rank 0: spawner, process registry, exit detection.

Design (answers design.md's "who spawns" and "who drives progress"):

* The user's script runs on the head's main thread. The services run on one
  daemon thread of the same process (``MPI_THREAD_MULTIPLE``).
* Every spawn in the runtime is done by the head, with ``MPI_Comm_spawn_multiple``
  from ``COMM_SELF``: one spawned set per ``ProcessGroup.start()``, one command
  entry per host of the placements ("one set per placement policy"). A worker
  that creates a group sends a request; the head spawns. So every process has
  a direct channel to the head (its parent intercommunicator) at no extra
  cost, the head holds the one process table that cleanup needs, and puids
  are unique without coordination.
* Exit detection does not trust MPI: each rank runs under a shim
  (:mod:`mpigroup.runtime.commands`) that writes its raw exit status to the run
  directory. A Python rank reports its exit code and any exception first
  (``FINISHED``), then leaves with ``os._exit`` without ``MPI_Finalize`` so
  that it never waits on the rest of its spawned set. Open MPI runs with ULFM
  (``mpi_ft_enable``) and PRRTE's ``recoverable`` so a dead rank is a reported
  event, not a job abort.
* The service loop polls with ``Iprobe`` per live rank and sleeps with
  exponential backoff (50 µs to 5 ms while anyone waits, 20 ms when idle).
"""
from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Optional

from mpi4py import MPI

from ..base import config
from ..base.procs import pid_alive
from ..base.waiting import Backoff
from ..errors import HostLost, MPIGroupError, RemoteError, ShuttingDown
from ..topology import Allocation
from . import relay
from .commands import collect_status_files, decode_status
from .context import forward_output_through_head
from .protocol import (TAG_AGENT, TAG_BOOT, TAG_CONTROL, TAG_EVENT, TAG_REPLY, TAG_REQUEST, Alive, BootPayload,
                       Exited, Finished, Frame, Launch, Leaving, MemberSpec, MemberState, MemberStatus, Output, PidKnown,
                       Shutdown, Signal, Started)
from .requests import DEFERRED, answer_with, handle_request
from .spawn import forwarded_env, spawn_python_set

log = logging.getLogger(__name__)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:
            return


@dataclass
class MemberRecord:
    """The head's view of one spawned process."""

    puid: int
    set_key: str
    rank: int
    host: str
    state: MemberState = MemberState.PENDING  # PENDING -> RUNNING -> EXITED
    pid: Optional[int] = None
    exitcode: Optional[int] = None
    error: Optional[tuple] = None  # (type, message, traceback) from FINISHED
    reported: bool = False  # FINISHED received
    agent: Optional[int] = None  # world rank of the node agent that relays it (other hosts)
    pending_signals: list = field(default_factory=list)  # sent before the pid was known
    stdout: list = field(default_factory=list)
    stderr: list = field(default_factory=list)

    def summary(self) -> MemberStatus:
        return MemberStatus(self.puid, self.state, self.pid, self.host, self.rank, self.exitcode, self.error)

    def mark_exited(self, exitcode: Optional[int], error: Optional[tuple] = None) -> None:
        """Exited and reported; ``exitcode``/``error`` fill in only what is not known yet."""
        self.state, self.reported = MemberState.EXITED, True
        if self.exitcode is None:
            self.exitcode = exitcode
        if self.error is None:
            self.error = error


@dataclass
class SpawnSet:
    set_key: str
    intercomm: Optional[Any]  # the members on the head's node (None once freed, or if none)
    members: list  # MemberRecord by rank
    foreign: bool = False  # spawned by another process (a PMI proxy): known by status files only
    nspace: str = ""  # the set's PMIx namespace, as its first rank reported it (released when done)


class _RelayReply:
    """Answers a relayed worker through its node agent, shaped like a communicator."""

    def __init__(self, world, agent: int, set_key: str) -> None:
        self.world, self.agent, self.set_key = world, agent, set_key

    def send(self, obj: Any, dest: int, tag: int) -> None:
        self.world.send(Frame(self.set_key, dest, relay.encode(tag, obj)), dest=self.agent, tag=TAG_CONTROL)


class Head:
    """Rank 0's services. One instance per runtime, created at bootstrap."""

    def __init__(self, allocation: Allocation, run_dirs: dict[str, str], hostname: str,
                 agent_hosts: dict[int, str], world=None) -> None:
        self.world = world if world is not None else MPI.COMM_SELF
        self.allocation = allocation
        self.run_dirs = run_dirs
        run_dir = self.run_dir = run_dirs[hostname]
        self.status_dir = os.path.join(run_dir, "status")
        self.hostname = hostname
        self.agent_hosts = agent_hosts  # world rank -> hostname (leaders only)
        self._lock = threading.RLock()
        self._spawn_lock = threading.Lock()
        self.closing = False  # one MPI_Comm_spawn at a time (a singleton starts its DVM on the first)
        self.changed = threading.Condition(self._lock)
        self.members: dict[int, MemberRecord] = {}
        self.sets: dict[str, SpawnSet] = {}
        self._puids = itertools.count(1)
        self._set_ids = itertools.count(1)
        self._stop = threading.Event()
        self._waiters = 0
        self._thread: Optional[threading.Thread] = None
        self._next_liveness = 0.0
        self._vanished: dict[int, float] = {}  # puid -> when its pid was first seen gone
        self.out_dir = os.path.join(run_dir, "out")
        os.makedirs(self.out_dir, exist_ok=True)
        self._tail_offsets: dict[str, int] = {}
        started = time.monotonic()
        self._agent_seen = {wrank: started for wrank in agent_hosts}  # last heartbeat
        self._asked_at = 0.0  # when the last request from another process came
        self.lost_hosts: dict[str, str] = {}  # host -> why
        self.host_timeout = config.get("MPIGROUP_HOST_TIMEOUT")
        self._relay_files = forward_output_through_head()  # only singleton runs write to out/
        self._segments: list[str] = []  # a singleton's /dev/shm segments, as recorded in its run dir

    # ------------------------------------------------------------------ ids
    def new_puids(self, n: int) -> list[int]:
        with self._lock:
            return [next(self._puids) for _ in range(n)]

    def new_set_key(self, prefix: str = "s") -> str:
        with self._lock:
            return f"{prefix}{next(self._set_ids)}"

    # ---------------------------------------------------------------- spawn
    def spawn_python(self, members: list[MemberSpec], hosts: list[str], join_universe: bool = False) -> list[int]:
        """Spawn one Python rank per MemberSpec on the given hosts; returns puids.

        ``join_universe``: the targets carry shared-object handles, so the
        whole set joins the universe at boot (one growth step).
        """
        for spec in members:
            spec.forward_output = forward_output_through_head()

        set_key = self.new_set_key()
        here = [i for i, h in enumerate(hosts) if h == self.hostname]
        remote: dict[str, list[int]] = {}
        for i, h in enumerate(hosts):
            if h != self.hostname:
                remote.setdefault(h, []).append(i)
        agents = {h: self._agent_for(h) for h in remote}
        ic, order = None, []
        with self._spawn_lock:
            if self.closing:
                raise ShuttingDown("the mpigroup runtime is shutting down: no new processes")
            if here:
                ic, local_order = spawn_python_set(self, set_key, [members[i] for i in here],
                                                   [hosts[i] for i in here])
                order = [here[i] for i in local_order]
                self._record_segments()
        relayed = [(h, i) for h, idxs in remote.items() for i in idxs]
        records = []
        with self._lock:
            for rank, idx in enumerate(order + [i for _, i in relayed]):
                spec = members[idx]
                rec = MemberRecord(spec.puid, set_key, rank, hosts[idx], state=MemberState.RUNNING,
                                   agent=agents.get(hosts[idx]))
                self.members[spec.puid] = rec
                records.append(rec)
            self.sets[set_key] = SpawnSet(set_key, ic, records)
            self.changed.notify_all()
        port = None  # members on other hosts never join with MPI: their operations go through the head
        if join_universe and order:
            port = handle_request(self, "universe_join", {"puids": [members[idx].puid for idx in order]})

        def boot_for(idx: int) -> BootPayload:
            return BootPayload(members[idx], self.allocation, self.hostname, os.getpid(),
                                 self.run_dirs.get(hosts[idx], self.run_dir), self.run_dirs,
                                 port if hosts[idx] == self.hostname else None, node=hosts[idx])

        if relayed:
            env = forwarded_env()
            launches: dict[str, list] = {}
            for rank, (host, idx) in enumerate(relayed, start=len(order)):
                launches.setdefault(host, []).append((rank, relay.encode(TAG_BOOT, boot_for(idx))))
            for host, entries in launches.items():
                self.world.send(Launch(set_key, entries, env), dest=agents[host], tag=TAG_CONTROL)
        # Non-blocking sends to all ranks at once: a first message to a spawned
        # rank needs its TCP handshake, which each rank drives while it polls,
        # so sending one by one would add those waits up.
        requests = [ic.isend(boot_for(idx), dest=rank, tag=TAG_BOOT) for rank, idx in enumerate(order)]
        backoff = Backoff(initial=50e-6, maximum=1e-3)
        while requests and not MPI.Request.Testall(requests):
            backoff.pause()
        return [m.puid for m in members]

    def _record_segments(self) -> None:
        """A singleton records its Open MPI segments (mapped from its first spawn on) for reclaim after a SIGKILL."""
        if not self._relay_files:
            return
        from .reclaim import own_segments, record_owner

        segments = own_segments()
        if segments != self._segments:
            self._segments = segments
            record_owner(self.run_dir, True, segments)

    def _agent_for(self, host: str) -> int:
        """World rank of the agent that starts processes on ``host`` (raises if there is none)."""
        if host in self.lost_hosts:
            raise HostLost(f"host {host!r} was lost earlier in this run: {self.lost_hosts[host]}")
        for wrank, whost in self.agent_hosts.items():
            if whost == host:
                return wrank
        raise MPIGroupError(f"no mpigroup agent runs on host {host!r}: start one initial rank per node "
                            f"(hosts with agents: {sorted(set(self.agent_hosts.values())) or 'none'})")

    def register_foreign_set(self, set_key: str, puids: list[int], hosts: list[str]) -> None:
        """Track ranks spawned by another process (the PMI proxy) by their status files."""
        with self._lock:
            records = [MemberRecord(p, set_key, r, h, state=MemberState.RUNNING)
                       for r, (p, h) in enumerate(zip(puids, hosts))]
            for rec in records:
                self.members[rec.puid] = rec
            self.sets[set_key] = SpawnSet(set_key, None, records, foreign=True)
            self.changed.notify_all()

    def abandon(self, puids: list[int], exitcode: int) -> None:
        """Mark members that will never run (their launcher failed) as exited."""
        with self._lock:
            for p in puids:
                rec = self.members[p]
                if rec.state != MemberState.EXITED:
                    rec.state, rec.exitcode, rec.reported = MemberState.EXITED, exitcode, True
            self.changed.notify_all()

    # --------------------------------------------------------------- status
    def status(self, puids: list[int]) -> list[MemberStatus]:
        with self._lock:
            return [self.members[p].summary() for p in puids]

    def output(self, puid: int, stream: str) -> bytes:
        with self._lock:
            rec = self.members[puid]
            return b"".join(rec.stdout if stream == "stdout" else rec.stderr)

    def wait_change(self, timeout: float) -> None:
        """Block the caller (not MPI) until the process table changes or timeout."""
        with self._lock:
            self._waiters += 1
            try:
                self.changed.wait(timeout)
            finally:
                self._waiters -= 1

    # -------------------------------------------------------------- signals
    def signal(self, puids: list[int], signum: int) -> None:
        """Deliver a signal to live members, locally or through the host's agent.

        A member that has not reported its pid yet (just spawned) gets the
        signal as soon as it does: a kill right after start() is never lost.
        """
        targets = []
        with self._lock:
            for p in puids:
                rec = self.members.get(p)
                if rec is None or rec.state == MemberState.EXITED:
                    continue
                if rec.pid:
                    targets.append((rec.host, rec.pid))
                else:
                    rec.pending_signals.append(signum)
        for host, pid in targets:
            self._deliver_signal(host, pid, signum)

    def _pid_known(self, rec: MemberRecord, pid: int) -> None:
        """Record a member's pid and deliver any signal that waited for it (lock held)."""
        rec.pid = pid
        pending, rec.pending_signals = rec.pending_signals, []
        for signum in pending:
            self._deliver_signal(rec.host, pid, signum)

    def _deliver_signal(self, host: str, pid: int, signum: int) -> None:
        if host in self.lost_hosts:
            return
        if host == self.hostname:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
            return
        for wrank, whost in self.agent_hosts.items():
            if whost == host:
                self.world.send(Signal(pid, signum), dest=wrank, tag=TAG_CONTROL)
                return

    # ----------------------------------------------------------- service loop
    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="mpigroup-head", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        """The service thread: 50 µs to 5 ms sleeps while anyone waits on the table, up to 20 ms when idle."""
        backoff = Backoff(initial=50e-6, maximum=5e-3)
        status = MPI.Status()
        while not self._stop.is_set():
            try:
                busy = self._serve_once(status)
            except Exception:  # never let the one service thread die silently: log it and go on
                log.error("head: service error (continuing)", exc_info=True)
                busy = False
            if busy:
                backoff.reset()
            else:
                # right after a request the next one usually follows within a round trip; and
                # Open MPI reads TCP sockets only every so many progress calls: poll often then
                hot = time.monotonic() - self._asked_at < 0.02
                backoff.maximum = 50e-6 if hot else 5e-3 if self._waiters else 20e-3
                backoff.delay = min(backoff.delay, backoff.maximum)
                backoff.pause()

    def _serve_once(self, status: MPI.Status) -> bool:
        busy = self._poll_world(status)
        busy |= self._poll_sets(status)
        if self._relay_files:
            busy |= self._tail_output_files()
        busy |= self._scan_status_files()
        if time.monotonic() >= self._next_liveness:
            self._check_liveness()
            self._check_hosts()
            self._next_liveness = time.monotonic() + 0.5
        return busy

    def _poll_world(self, status: MPI.Status) -> bool:
        """Messages from the agents, one source at a time (a failed agent must not stop the rest)."""
        world = self.world
        busy = False
        for src in range(1, world.Get_size()):
            if self._is_lost_rank(src):
                continue
            try:
                while world.Iprobe(src, MPI.ANY_TAG, status):
                    tag = status.Get_tag()
                    msg = world.recv(source=src, tag=tag)
                    busy = True
                    if tag == TAG_AGENT:
                        self._on_agent(src, msg)
                    elif tag == TAG_REQUEST:
                        self._answer(world, src, msg)
            except MPI.Exception as exc:  # ULFM: that agent's process failed
                host = self.agent_hosts.get(src)
                if host is not None:
                    self._lose_host(host, f"its agent (world rank {src}) failed: {exc.Get_error_string()}")
        return busy

    def _on_agent(self, src: int, msg: tuple) -> None:
        if src in self._agent_seen:
            self._agent_seen[src] = time.monotonic()  # every message counts as a heartbeat
        if isinstance(msg, Frame):
            self._on_relayed(src, msg.set_key, msg.rank, msg.frame)
        elif isinstance(msg, Exited):
            self._mark_exited(msg.set_key, msg.rank, msg.raw, msg.error)
        elif isinstance(msg, PidKnown):
            self._set_pid(msg.set_key, msg.rank, msg.pid)
        elif not isinstance(msg, Alive):
            log.warning("head: unknown message from agent %d: %r", src, msg)

    def _on_relayed(self, agent: int, set_key: str, rank: int, frame: bytes) -> None:
        with self._lock:
            sset = self.sets.get(set_key)
            rec = sset.members[rank] if sset is not None and rank < len(sset.members) else None
        if rec is None:
            return
        tag, obj = relay.decode(frame)
        if tag == TAG_EVENT:
            self._on_event(rec, obj)
        elif tag == TAG_REQUEST:
            self._answer(_RelayReply(self.world, agent, set_key), rank, obj)

    def _is_lost_rank(self, wrank: int) -> bool:
        host = self.agent_hosts.get(wrank)
        return host is not None and host in self.lost_hosts

    def _check_hosts(self) -> None:
        """A host whose agent sent no heartbeat for ``host_timeout`` seconds is lost."""
        now = time.monotonic()
        for wrank, seen in list(self._agent_seen.items()):
            host = self.agent_hosts[wrank]
            if host not in self.lost_hosts and now - seen > self.host_timeout:
                self._lose_host(host, f"no heartbeat from its agent for {now - seen:.1f} s")

    def _lose_host(self, host: str, why: str) -> None:
        """Every member on a lost host is reported exited (-9, HostLost); the run goes on."""
        with self._lock:
            if host in self.lost_hosts:
                return
            self.lost_hosts[host] = why
            for rec in self.members.values():
                if rec.host == host and rec.state != MemberState.EXITED:
                    rec.mark_exited(-signal.SIGKILL, ("HostLost", f"host {host!r} was lost: {why}", ""))
            self.changed.notify_all()
        log.warning("host %r lost: %s", host, why)

    def _poll_sets(self, status: MPI.Status) -> bool:
        busy = False
        with self._lock:
            live = [(s, rec) for s in self.sets.values() if s.intercomm is not None
                    for rec in s.members
                    if rec.agent is None and (rec.state != MemberState.EXITED or not rec.reported)]
        for sset, rec in live:
            ic = sset.intercomm
            try:
                while ic.Iprobe(rec.rank, MPI.ANY_TAG, status):
                    tag = status.Get_tag()
                    msg = ic.recv(source=rec.rank, tag=tag)
                    busy = True
                    if tag == TAG_EVENT:
                        self._on_event(rec, msg)
                    elif tag == TAG_REQUEST:
                        self._answer(ic, rec.rank, msg)
            except MPI.Exception:
                # ULFM: the rank is gone. Its shim's status file says how.
                with self._lock:
                    rec.reported = True
                    self._free_if_done(sset)
        return busy

    def _on_event(self, rec: MemberRecord, msg: tuple) -> None:
        with self._lock:
            if isinstance(msg, Started):
                self._pid_known(rec, msg.pid)
                sset = self.sets.get(rec.set_key)
                if sset is not None and msg.nspace and not sset.nspace:
                    sset.nspace = msg.nspace
            elif isinstance(msg, Output) and msg.stream.startswith("forward-"):
                _write_all(1 if msg.stream == "forward-stdout" else 2, msg.data)
            elif isinstance(msg, Output):
                (rec.stdout if msg.stream == "stdout" else rec.stderr).append(msg.data)
            elif isinstance(msg, Finished):
                rec.exitcode, rec.error, rec.reported = msg.exitcode, msg.error, True
                self._set_done_check(rec)
            else:
                log.warning("head: unknown event from puid %d: %r", rec.puid, msg)
            self.changed.notify_all()

    def _answer(self, comm, src: int, msg: tuple) -> None:
        req_id, op, kwargs = msg
        self._asked_at = time.monotonic()
        if req_id:
            answer_with(lambda ok, value: self._send_answer(comm, src, (req_id, ok, value)))
        try:
            result = (req_id, True, handle_request(self, op, kwargs))
        except BaseException as exc:  # the caller re-raises it
            result = (req_id, False, exc)
        finally:
            answer_with(None)
        if req_id == 0:  # a posted request (RemoteHeadAPI.post): nobody waits for an answer
            if not result[1]:
                log.error("head: posted request %r from rank %d failed: %s", op, src, result[2])
            return
        if result[2] is DEFERRED:  # its handler answers later (requests.take_reply)
            return
        self._send_answer(comm, src, result)

    def _send_answer(self, comm, src: int, result: tuple) -> None:
        """Answer request ``result[0]`` of rank ``src``; an answer whose way is gone is dropped.

        A requester on a lost host (its agent failed: ``MPI_ERR_PROC_FAILED``)
        waits for nothing any more; the host's loss is reported on its own path.
        """
        req_id = result[0]
        try:
            comm.send(result, dest=src, tag=TAG_REPLY)
        except MPI.Exception as exc:
            log.warning("head: the answer to request %d of rank %d was dropped: %s", req_id, src, exc)
        except Exception as send_error:  # the result or the exception cannot be pickled
            failed = result[2] if not result[1] else send_error
            # the caller still sees what was raised where: type, message and the head's traceback
            remote = RemoteError(type(failed).__qualname__, str(failed),
                                 "".join(traceback.format_exception(failed)), host=self.hostname)
            try:
                comm.send((req_id, False, remote), dest=src, tag=TAG_REPLY)
            except MPI.Exception as exc:
                log.warning("head: the answer to request %d of rank %d was dropped: %s", req_id, src, exc)

    # ------------------------------------------------------- exit detection
    def _scan_status_files(self) -> bool:
        events = collect_status_files(self.status_dir)
        for event in events:
            if isinstance(event, Exited):
                self._mark_exited(event.set_key, event.rank, event.raw, event.error)
            else:
                self._set_pid(event.set_key, event.rank, event.pid)
        return bool(events)

    def _tail_output_files(self, only: Optional[str] = None) -> bool:
        """Relay output that PMI ranks of a singleton run write to run_dir/out."""
        try:
            names = os.listdir(self.out_dir)
        except FileNotFoundError:
            return False
        busy = False
        for name in names:
            if only is not None and not name.startswith(only):
                continue
            path = os.path.join(self.out_dir, name)
            offset = self._tail_offsets.get(name, 0)
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except OSError:
                continue
            if data:
                self._tail_offsets[name] = offset + len(data)
                _write_all(2 if name.endswith(".stderr") else 1, data)
                busy = True
        return busy

    def _check_liveness(self) -> None:
        """Never hang on a process that vanished without an exit status.

        A shim killed together with its rank (an MPI launcher tearing down a
        spawned set when fault isolation is off) writes no status file. A local
        member whose pid is gone and whose status has not arrived within a
        second is marked exited with -9 and an explanatory error.
        """
        now = time.monotonic()
        with self._lock:
            local = [r for r in self.members.values()
                     if r.state == MemberState.RUNNING and r.pid and r.host == self.hostname]
        for rec in local:
            if pid_alive(rec.pid):
                continue
            first = self._vanished.setdefault(rec.puid, now)
            if now - first < 1.0:
                continue
            with self._lock:
                if rec.state == MemberState.RUNNING:
                    if rec.exitcode is None:
                        rec.error = ("ProcessLost", "process vanished without an exit status "
                                     "(killed together with its launch shim?)", "")
                    rec.mark_exited(-signal.SIGKILL)
                    self._set_done_check(rec)
                    self.changed.notify_all()

    def _set_pid(self, set_key: str, rank: int, pid: int) -> None:
        with self._lock:
            sset = self.sets.get(set_key)
            if sset is not None and rank < len(sset.members):
                self._pid_known(sset.members[rank], pid)
                self.changed.notify_all()

    def _mark_exited(self, set_key: str, rank: int, raw: int, error: Optional[list] = None) -> None:
        with self._lock:
            sset = self.sets.get(set_key)
            if sset is None or rank >= len(sset.members):
                return
            rec = sset.members[rank]
            if sset.foreign:
                self._tail_output_files(only=f"{set_key}.{rank}.")
            if rec.exitcode is None:
                rec.exitcode = decode_status(raw)
            if error and rec.error is None:
                rec.error = tuple(error)
            rec.state = MemberState.EXITED
            if sset.foreign and rec.exitcode != 0:
                # a PMI world behaves like an mpiexec job: one failed rank ends
                # it (its peers would otherwise wait in MPI forever)
                rest = [m.puid for m in sset.members if m.state != MemberState.EXITED]
                if rest:
                    self.signal(rest, signal.SIGKILL)
            if sset.foreign:
                rec.reported = True
            self._free_if_done(sset)
            self.changed.notify_all()

    def _set_done_check(self, rec: MemberRecord) -> None:
        """Release ``rec``'s set if it was the last member to finish (lock held)."""
        sset = self.sets.get(rec.set_key)
        if sset is not None:
            self._free_if_done(sset)

    def _free_if_done(self, sset: SpawnSet) -> None:
        """Release a set once every member exited and reported (lock held).

        Its intercommunicator is freed (a disconnect would wait for members
        that left without one, and releases no more in Open MPI 5.0.x), the
        PMIx client's copy of its job data is dropped (about 90 KiB a set,
        benchmarks/notes_head_memory.md), and the set leaves ``sets``; its
        member records stay in ``members`` for status().
        """
        if sset.intercomm is not None and all(m.state == MemberState.EXITED and m.reported for m in sset.members
                                              if m.agent is None):
            try:
                sset.intercomm.Free()
            except MPI.Exception:
                pass
            sset.intercomm = None
            if sset.nspace:
                from .pmix_jobs import forget_job

                forget_job(sset.nspace)
        if sset.intercomm is None and all(m.state == MemberState.EXITED and m.reported for m in sset.members):
            if self.sets.get(sset.set_key) is sset:
                del self.sets[sset.set_key]

    # -------------------------------------------------------------- cleanup
    def stop_agents(self, finalize: bool = True, patience: float = 10.0) -> None:
        """Tell every other initial rank to leave its agent loop (``finalize``: with MPI_Finalize).

        Without ``finalize`` the head exits right after this, so it first waits (up to
        ``patience`` seconds) until each agent has read its Shutdown and said so.
        """
        ranks = [w for w in range(1, self.world.Get_size()) if not self._is_lost_rank(w)]
        for wrank in ranks:
            self.world.send(Shutdown(finalize), dest=wrank, tag=TAG_CONTROL)
        if finalize:
            return
        deadline = time.monotonic() + patience
        waiting, backoff = set(ranks), Backoff(initial=50e-6, maximum=5e-3)
        while waiting and time.monotonic() < deadline:
            for wrank in list(waiting):
                try:
                    while self.world.Iprobe(wrank, TAG_AGENT):
                        if isinstance(self.world.recv(source=wrank, tag=TAG_AGENT), Leaving):
                            waiting.discard(wrank)
                except MPI.Exception:  # that agent is gone already
                    waiting.discard(wrank)
            backoff.pause()
        if waiting:
            log.warning("agents %s did not confirm the shutdown", sorted(waiting))

    def free_sets(self) -> None:
        with self._lock:
            for sset in self.sets.values():
                if sset.intercomm is not None:
                    try:
                        sset.intercomm.Free()
                    except MPI.Exception:
                        pass
                    sset.intercomm = None

    def close_spawning(self) -> None:
        """Refuse new spawns and wait for one in flight (MPI must not finalize under it)."""
        self.closing = True
        with self._spawn_lock:
            pass

    def live_puids(self) -> list[int]:
        with self._lock:
            return [p for p, r in self.members.items() if r.state != MemberState.EXITED]

    def terminate_all(self, patience: float = 3.0) -> list[int]:
        """SIGTERM then SIGKILL every live process; returns puids that would not die."""
        live = self.live_puids()
        if not live:
            return []
        self.signal(live, signal.SIGTERM)
        deadline = time.monotonic() + patience
        while self.live_puids() and time.monotonic() < deadline:
            self.wait_change(0.05)
        live = self.live_puids()
        if live:
            self.signal(live, signal.SIGKILL)
            deadline = time.monotonic() + patience
            while self.live_puids() and time.monotonic() < deadline:
                self.wait_change(0.05)
        return self.live_puids()
