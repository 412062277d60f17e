"""Entry of every spawned Python rank: ``python -m mpigroup.worker RUN_DIR SET_KEY``.

The loop is one top-level function with explicit inputs (after loky):
receive the BootPayload from the head, apply placement (CPU affinity, GPU
visibility, cwd, environment, output routing), run the target, report
``FINISHED`` with the exit code and any exception (type, message, traceback),
then leave with ``os._exit`` so the rank never waits in ``MPI_Finalize`` for
the rest of its spawned set. The shim records how the process ended.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import Optional

from ..base import shutdown
from ..base.procs import finalize_pmix, pid_alive
from ..base.shutdown import Stage
from ..base.waiting import Backoff
from ..runtime import context
from ..runtime.nodeinfo import node_name
from ..runtime.protocol import TAG_BOOT, TAG_EVENT, Finished, Output, Started
from ..runtime.relay import AgentChannel
from .output import OutputRouting

# Imported when needed instead: mpi4py.MPI (a worker started by a node agent never
# initialises MPI; for the others __main__ initialises it before this module loads,
# because the head's spawn waits for every rank's MPI_Init), cloudpickle (only Python
# targets need it) and sync.universe (only workers whose arguments hold shared objects).

log = logging.getLogger(__name__)


def _adopt_sys_path(member) -> None:
    """Import like the spawner did (as multiprocessing's spawn does)."""
    known = set(sys.path)
    sys.path[:0] = [p for p in member.sys_path if p not in known]


def _apply_placement(member) -> None:
    if member.cpus:
        os.sched_setaffinity(0, member.cpus)
    os.environ.update(member.gpu_env)
    os.environ.update(member.env)
    os.environ["MPIGROUP_PUID"] = str(member.puid)
    if member.cwd:
        os.chdir(member.cwd)


def _head_gone(head_host: str, head_pid: int) -> bool:
    """True once the head, if it runs on this node, has disappeared."""
    return head_host == node_name() and not pid_alive(head_pid)


def _watch_head(head_host: str, head_pid: int, on_lost) -> None:
    """Leave if the head process on this node is gone (never outlive a run)."""
    if head_host != node_name():
        return  # on another node we die with our agent (PR_SET_PDEATHSIG) or the launcher

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if _head_gone(head_host, head_pid):
                on_lost()
                os._exit(1)

    threading.Thread(target=loop, daemon=True, name="mpigroup-watchdog").start()


def _exit_code(exc: SystemExit) -> int:
    """What the OS would report for sys.exit(code), as multiprocessing does."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code % 256  # sys.exit(-1) -> 255, sys.exit(256) -> 0
    print(code, file=sys.stderr)
    return 1


def _kill_descendants() -> None:
    """SIGKILL what the target left running below this worker (no leaked processes).

    multiprocessing would orphan them; a run must not outlive itself.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    doomed, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        doomed.extend(children)
        frontier.extend(children)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _join_user_threads(timeout: float = 60.0) -> None:
    """Wait for the target's non-daemon threads, as a normal interpreter exit would."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))


def _run_python(member) -> tuple[int, Optional[tuple]]:
    try:
        import cloudpickle  # lazy: an executable target never needs it

        fn, args, kwargs = cloudpickle.loads(member.target)
        sys.argv = [getattr(fn, "__name__", "mpigroup-worker")]
        fn(*args, **(kwargs or {}))
        _join_user_threads()
        return 0, None
    except SystemExit as exc:
        return _exit_code(exc), None
    except KeyboardInterrupt:
        return -signal.SIGINT, None
    except BaseException as exc:  # reported to the parent with the traceback
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        return 1, (type(exc).__qualname__, str(exc), tb)


_child = None  # subprocess.Popen of an executable target


def _run_exec(member) -> tuple[int, Optional[tuple]]:
    """Run a non-MPI executable as a child that dies with this rank."""
    global _child
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the worker

    try:
        _child = subprocess.Popen(member.target, preexec_fn=preexec)
    except OSError as exc:
        return 127, (type(exc).__qualname__, str(exc), traceback.format_exc())
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: _child.send_signal(s))
    return _child.wait(), None


def _leave_universe() -> None:
    """Flush queue feeders, then leave the shared-object universe (if this process joined it)."""
    shutdown.run(Stage.FLUSH, timeout=60.0)
    shutdown.run(Stage.LEAVE)


def _connect(set_key: str, agent_rank: Optional[int]):
    """The channel to the head: the parent intercommunicator, or the node agent's socket."""
    if agent_rank is None:
        from mpi4py import MPI  # first: the head's spawn waits for our MPI_Init

        return MPI.Comm.Get_parent()
    return AgentChannel.connect(set_key, agent_rank)


def run(run_dir: str, set_key: str, head_at: str = "", agent_rank: Optional[int] = None) -> None:
    """Boot, run the target, report. ``agent_rank``: started by a node agent (no MPI)."""
    parent = _connect(set_key, agent_rank)

    # the sh shim starts us in the background, where SIGINT is ignored;
    # restore Python's default so stop() and Ctrl-C raise KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    relayed = agent_rank is not None
    rank = parent.Get_rank()
    backoff = Backoff(initial=50e-6, maximum=2e-3)  # short: the boot message follows the spawn at once
    deadline = time.monotonic() + 300
    next_check = time.monotonic() + 0.5
    while not parent.Iprobe(0, TAG_BOOT):  # never block inside MPI (spins a core)
        now = time.monotonic()
        if now > deadline:
            log.error("worker: no boot message from the head in 300 s")
            os._exit(70)
        if now > next_check:
            host, _, pid = head_at.rpartition(":")
            if pid.isdigit() and _head_gone(host, int(pid)):
                os._exit(1)
            next_check = now + 0.5
        backoff.pause()
    boot = parent.recv(source=0, tag=TAG_BOOT)
    member = boot.member
    context.install_worker(parent, boot, relayed=relayed)
    host = context.current().hostname

    send_lock = threading.Lock()

    def send_output(stream: str, data: bytes) -> None:
        with send_lock:
            parent.send(Output(stream, data), dest=0, tag=TAG_EVENT)

    routing = OutputRouting()
    label = f"[{member.group_name or 'puid'} {member.puid} rank {rank}@{host}] " if member.label else None
    routing.route(1, member.stdout, label=label, send=send_output, forward=member.forward_output)
    routing.route(2, member.stderr, label=label, send=send_output, forward=member.forward_output)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)

    _apply_placement(member)
    _adopt_sys_path(member)
    _watch_head(boot.head_host, boot.head_pid, lambda: _child and _child.kill())
    nspace = "" if relayed else os.environ.get("PMIX_NAMESPACE", "")
    parent.send(Started(os.getpid(), host, nspace), dest=0, tag=TAG_EVENT)
    if boot.universe_port:  # our arguments carry shared objects: join as one set
        from ..sync.universe import join_spawned_set  # only these workers need the shared-object layer

        join_spawned_set(boot.universe_port)

    if member.target_kind == "python":
        code, error = _run_python(member)
    else:
        code, error = _run_exec(member)
    _leave_universe()
    _kill_descendants()
    routing.close()
    with send_lock:
        req = parent.issend(Finished(code, error), dest=0, tag=TAG_EVENT)
        backoff = Backoff(initial=50e-6, maximum=20e-3)
        deadline = time.monotonic() + 600
        while not req.Test() and time.monotonic() < deadline:
            backoff.pause()
    if not relayed:
        finalize_pmix()
    os._exit(code if 0 <= code <= 255 else (128 - code if code < 0 else 1))


def main(argv: Optional[list[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    agent = len(argv) == 3 and argv[0] == "--agent" and argv[2].isdigit()
    if len(argv) not in (2, 3):
        print("usage: python -m mpigroup.worker RUN_DIR SET_KEY [HEAD_HOST:PID]\n"
              "       python -m mpigroup.worker --agent SET_KEY RANK   (started by the runtime)",
              file=sys.stderr)
        sys.exit(2)
    try:
        if agent:
            run("", argv[1], "", int(argv[2]))
        else:
            run(*argv)
    except KeyboardInterrupt:  # stop() before the target started: report SIGINT
        os._exit(128 + signal.SIGINT)
    except BaseException:  # e.g. the head died mid-handshake and MPI raised
        # never leave through the interpreter: its MPI_Finalize would wait
        # (spinning a core) for a head and a set that are gone
        log.error("worker: failed before its target could report", exc_info=True)
        sys.stderr.flush()
        os._exit(70)
