"""Node agent: the initial ranks other than the head.

The leader agent of each host other than the head's (one per host, chosen at
bootstrap):

* starts the Python workers the head places on its host, as its own child
  processes (``launch``), and relays their frames to and from the head over
  ``COMM_WORLD`` (:mod:`.relay` says why workers on other hosts never use a
  dynamic MPI connection);
* reports their pids and exit statuses (it is their parent, so the status is
  the kernel's, never a guess), and the statuses the launch shims of PMI
  ranks write on its node;
* delivers signals to processes of its node (a pid means nothing elsewhere);
* sends a heartbeat every second, so the head can tell a lost host from a
  quiet one.

Every agent waits with a sleeping poll (20 us after traffic, doubling to 50 ms, 5 ms
while it has workers),
so idle agents cost almost no CPU. Workers die with their agent
(``PR_SET_PDEATHSIG``), so a lost agent never leaves processes behind.
"""
from __future__ import annotations

import ctypes
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection, Listener, wait
from typing import Optional

from mpi4py import MPI

from ..base.procs import finalize_pmix, pid_alive
from ..base.waiting import Backoff
from . import relay
from .commands import WORKER_MODULE, collect_status_files
from .context import remove_run_dir
from .protocol import TAG_AGENT, TAG_CONTROL, Alive, Exited, Frame, Launch, Leaving, PidKnown, Shutdown, Signal

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
_SCRUB_PREFIXES = ("PMIX_", "PMI_", "OMPI_", "PRTE_")  # this agent's MPI identity


def _forward_status_files(world, status_dir: str) -> bool:
    events = collect_status_files(status_dir)
    for event in events:
        world.send(event, dest=0, tag=TAG_AGENT)
    return bool(events)


def _leave(reason: str, run_dir: str) -> None:
    """Exit now, without MPI_Finalize: it would wait forever for the dead head."""
    log.error("agent: %s; leaving", reason)
    remove_run_dir(run_dir)  # the head cannot remove it any more
    os._exit(1)


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Worker:
    def __init__(self, set_key: str, rank: int, proc: Optional[subprocess.Popen], boot: bytes) -> None:
        self.set_key, self.rank, self.proc = set_key, rank, proc
        self.pending = [boot]  # frames for the worker until it connects
        self.conn: Optional[Connection] = None
        self.asking = 0  # its requests to the head not answered yet


class NodeAgent:
    """What the leader agent of a host runs; see the module docstring."""

    def __init__(self, world, run_dir: str, node: str) -> None:
        self.world = world
        self.run_dir = run_dir
        self.node = node
        self.address = f"\0mpigroup-agent-{uuid.uuid4().hex}"  # abstract: no file, no path limit
        self.key = secrets.token_bytes(32)
        self.listener = Listener(self.address, family="AF_UNIX", authkey=self.key)
        self.workers: dict[tuple[str, int], _Worker] = {}
        self.asked_at = 0.0  # when a worker last sent a request that waits for an answer
        self._accepted: list[Connection] = []
        self._accept_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        threading.Thread(target=self._accept_loop, name="mpigroup-agent-accept", daemon=True).start()

    # ------------------------------------------------------------ sockets
    def _accept_loop(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError):
                continue  # a client that failed authentication or went away
            with self._accept_lock:
                self._accepted.append(conn)
            os.write(self._wake_w, b"x")

    def _take_accepted(self) -> bool:
        with self._accept_lock:
            fresh, self._accepted = self._accepted, []
        for conn in fresh:
            try:
                set_key, rank = relay.decode_hello(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                conn.close()
                continue
            worker = self.workers.get((set_key, rank))
            if worker is None:
                conn.close()
                continue
            worker.conn = conn
            for frame in worker.pending:
                self._to_worker(worker, frame)
            worker.pending = []
        return bool(fresh)

    def _to_worker(self, worker: _Worker, frame: bytes) -> None:
        if worker.conn is None:
            worker.pending.append(frame)
            return
        try:
            worker.conn.send_bytes(frame)
        except OSError:
            pass  # it died; its exit status follows

    def _from_worker(self, worker: _Worker) -> bool:
        """Forward what the worker sent; False at end of file."""
        assert worker.conn is not None
        try:
            while worker.conn.poll(0):
                frame = worker.conn.recv_bytes()
                if frame[:1] == relay.ASKS:
                    worker.asking += 1
                    self.asked_at = time.monotonic()
                self.world.send(Frame(worker.set_key, worker.rank, frame), dest=0, tag=TAG_AGENT)
        except (EOFError, OSError):
            worker.conn.close()
            worker.conn = None
            return False
        return True

    # ------------------------------------------------------------ workers
    def launch(self, set_key: str, entries: list, env_base: dict) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
        env.update(env_base)
        env.update({"MPIGROUP_NODE": self.node, relay.ENV_SOCKET: "@" + self.address[1:],
                    relay.ENV_KEY: self.key.hex()})
        for rank, boot in entries:
            worker = _Worker(set_key, rank, None, boot)
            self.workers[(set_key, rank)] = worker
            try:
                worker.proc = subprocess.Popen(
                    [sys.executable, "-m", WORKER_MODULE, "--agent", set_key, str(rank)],
                    env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            except OSError as exc:
                del self.workers[(set_key, rank)]
                self.world.send(Exited(set_key, rank, 127, [type(exc).__name__, str(exc), ""]),
                                dest=0, tag=TAG_AGENT)
                continue
            self.world.send(PidKnown(set_key, rank, worker.proc.pid), dest=0, tag=TAG_AGENT)

    def reap(self) -> bool:
        """Report workers that exited, after forwarding everything they sent."""
        busy = False
        for key, worker in list(self.workers.items()):
            if worker.proc is None or worker.proc.poll() is None:
                continue
            if worker.conn is not None:
                worker.conn.poll(0.2)  # the kernel closed it: read to end of file
                while self._from_worker(worker):
                    if not worker.conn.poll(0.2):
                        break
            code = worker.proc.returncode
            raw = 128 - code if code < 0 else code
            self.world.send(Exited(worker.set_key, worker.rank, raw, None), dest=0, tag=TAG_AGENT)
            del self.workers[key]
            busy = True
        return busy

    def poll_cap(self) -> float:
        """The longest sleep before looking for the head's messages again.

        While a worker waits for an answer, 50 us for its first 20 ms (a round trip
        of a shared-object operation), then 1 ms (it is parked: a blocked Queue.get);
        otherwise 5 ms with workers, 50 ms without.
        """
        if any(w.asking for w in self.workers.values()):
            return 50e-6 if time.monotonic() - self.asked_at < 0.02 else 1e-3
        return 5e-3 if self.workers else 50e-3

    def kill_all(self) -> None:
        for worker in self.workers.values():
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.kill()

    def wait_io(self, timeout: float) -> bool:
        """Sleep until a worker writes, a worker connects, or ``timeout``."""
        conns = [w.conn for w in self.workers.values() if w.conn is not None]
        if timeout < 1e-3:  # poll() counts whole milliseconds: a 50 us wait would last 1 ms
            ready = wait(conns + [self._wake_r], 0)
            if not ready:
                time.sleep(timeout)
        else:
            ready = wait(conns + [self._wake_r], timeout)
        if self._wake_r in ready:
            os.read(self._wake_r, 4096)
        busy = self._take_accepted()
        for worker in list(self.workers.values()):
            if worker.conn is not None and worker.conn in ready:
                self._from_worker(worker)
                busy = True
        return busy

    def control(self, msg: tuple) -> None:
        """A message of the head for the leader: start workers, or a frame for one of them."""
        if isinstance(msg, Launch):
            self.launch(msg.set_key, msg.entries, msg.env)
        elif isinstance(msg, Frame):
            worker = self.workers.get((msg.set_key, msg.rank))
            if worker is not None:
                if msg.frame[:1] == relay.ANSWERS and worker.asking:
                    worker.asking -= 1
                self._to_worker(worker, msg.frame)
        else:
            log.warning("agent: unknown message from the head: %r", msg)


def run_agent(run_dir: str, is_leader: bool, head_pid=None, node: str = "") -> int:
    """Serve until "shutdown"; leave with status 1 if the head dies (never hang a job)."""
    world = MPI.COMM_WORLD
    status_dir = os.path.join(run_dir, "status")
    agent = NodeAgent(world, run_dir, node) if is_leader else None
    # 20 us after traffic: a relayed worker's request is answered within tens of microseconds,
    # and its reply must not wait for a long sleep here (select() watches the sockets, not MPI)
    backoff = Backoff(spin=0.0, initial=20e-6, maximum=50e-3)
    next_check = time.monotonic() + 1.0
    next_beat = next_scan = 0.0
    finalize = True
    try:
        while True:
            busy = False
            now = time.monotonic()
            if now >= next_check:
                # on another host (head_pid None) a dead head shows up as an MPI error instead
                if head_pid is not None and not pid_alive(head_pid):
                    _leave("the head is gone", run_dir)
                next_check = now + 1.0
            if agent is not None and now >= next_beat:
                world.send(Alive(), dest=0, tag=TAG_AGENT)
                next_beat = now + HEARTBEAT_S
            try:
                while world.Iprobe(0, TAG_CONTROL):
                    msg = world.recv(source=0, tag=TAG_CONTROL)
                    busy = True
                    if isinstance(msg, Shutdown):
                        finalize = msg.finalize
                        if not finalize:
                            world.send(Leaving(), dest=0, tag=TAG_AGENT)
                        return 0
                    if isinstance(msg, Signal):
                        try:
                            os.kill(msg.pid, msg.signum)
                        except ProcessLookupError:
                            pass
                    elif agent is not None:
                        agent.control(msg)
            except MPI.Exception as exc:  # ULFM: the head failed
                if agent is not None:
                    agent.kill_all()
                _leave(f"lost the head ({exc.Get_error_string()})", run_dir)
            if agent is not None and now >= next_scan:  # exits: a few ms late costs nothing
                busy |= _forward_status_files(world, status_dir)
                busy |= agent.reap()
                next_scan = now + 5e-3
            if busy:
                backoff.reset()
            if agent is None:
                backoff.maximum = 50e-3
                backoff.pause()
                continue
            # a worker's frame or connection ends the wait at once; the cap is short while one waits
            backoff.maximum = agent.poll_cap()
            if agent.wait_io(min(backoff.delay, backoff.maximum)):
                backoff.reset()
            else:
                backoff.delay = min(backoff.maximum, backoff.delay * 2)
    finally:
        if agent is not None:
            agent.kill_all()
        if is_leader:
            remove_run_dir(run_dir)
        if not finalize:  # the head leaves without MPI_Finalize: its fence would wait for ever
            sys.stdout.flush()
            sys.stderr.flush()
            finalize_pmix()
            os._exit(0)
