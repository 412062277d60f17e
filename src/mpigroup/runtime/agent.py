"""Node agent: the initial ranks other than the head.

The leader agent of each host other than the head's (one per host, chosen
at bootstrap) forwards exit statuses
and pids written by the shims on its node, and delivers signals to processes
there. Every agent waits for "shutdown" with a sleeping poll (cap 50 ms), so
idle agents cost almost no CPU.
"""
from __future__ import annotations

import os
import shutil

from mpi4py import MPI

from . import protocol as P
from .shim import collect_status_files


def _forward_status_files(world, status_dir: str) -> bool:
    events = collect_status_files(status_dir)
    for event in events:
        world.send(event, dest=0, tag=P.TAG_AGENT)
    return bool(events)


def run_agent(run_dir: str, is_leader: bool) -> int:
    world = MPI.COMM_WORLD
    status_dir = os.path.join(run_dir, "status")
    backoff = P.Backoff(initial=1e-3, maximum=50e-3)
    try:
        while True:
            busy = False
            if world.Iprobe(0, P.TAG_CONTROL):
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
            shutil.rmtree(run_dir, ignore_errors=True)
