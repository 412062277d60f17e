"""Node agent: the initial ranks other than the head.

The leader agent of each host other than the head's (one per host, chosen
at bootstrap) forwards exit statuses
and pids written by the shims on its node, and delivers signals to processes
there. Every agent waits for "shutdown" with a sleeping poll (cap 50 ms), so
idle agents cost almost no CPU.
"""
from __future__ import annotations

import os
import sys
import time

from mpi4py import MPI

from . import protocol as P
from .shim import collect_status_files


def _forward_status_files(world, status_dir: str) -> bool:
    events = collect_status_files(status_dir)
    for event in events:
        world.send(event, dest=0, tag=P.TAG_AGENT)
    return bool(events)


def _leave(reason: str, run_dir: str) -> None:
    """Exit now, without MPI_Finalize: it would wait forever for the dead head."""
    print(f"mpigroup agent: {reason}; leaving", file=sys.stderr, flush=True)
    from .context import remove_run_dir

    remove_run_dir(run_dir)  # the head cannot remove it any more
    os._exit(1)


def run_agent(run_dir: str, is_leader: bool, head_pid=None) -> int:
    """Serve until "shutdown"; leave with status 1 if the head dies (never hang a job)."""
    world = MPI.COMM_WORLD
    status_dir = os.path.join(run_dir, "status")
    backoff = P.Backoff(initial=1e-3, maximum=50e-3)
    next_check = time.monotonic() + 1.0
    try:
        while True:
            busy = False
            if time.monotonic() >= next_check:
                # on another host (head_pid None) a dead head shows up as an MPI error instead
                if head_pid is not None and not P.pid_alive(head_pid):
                    _leave("the head is gone", run_dir)
                next_check = time.monotonic() + 1.0
            try:
                has_control = world.Iprobe(0, P.TAG_CONTROL)
            except MPI.Exception as exc:  # ULFM: the head failed
                _leave(f"lost the head ({exc.Get_error_string()})", run_dir)
            if has_control:
                msg = world.recv(source=0, tag=P.TAG_CONTROL)
                busy = True
                if msg[0] == "shutdown":
                    return 0
                if msg[0] == "signal":
                    try:
                        os.kill(msg[1], msg[2])
                    except ProcessLookupError:
                        pass
            if is_leader:
                busy |= _forward_status_files(world, status_dir)
            if busy:
                backoff.reset()
            else:
                backoff.sleep()
    finally:
        if is_leader:
            from .context import remove_run_dir

            remove_run_dir(run_dir)
