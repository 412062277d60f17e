"""Spike for the Queue/Event membership question (design.md, question 1).

Can a window be widened to a set of processes spawned *later*, while the
existing members' main threads sleep, and what does it cost?

Protocol measured here:
1. the head spawns set A and merges the spawn intercommunicator: U = head + A;
   A's ranks start a service thread that polls their parent channel with
   backoff (100 us .. 50 ms) while their main thread sleeps;
2. later the head spawns set B, opens a port and sends it to B;
3. the head tells A's service threads to grow: U.Accept(port) collectively,
   while B does COMM_WORLD.Connect(port); both sides Merge, then call
   MPI_Win_allocate over the new universe;
4. B's ranks then run 1000 locked MPI_Fetch_and_op each on the head's memory
   while A's main threads still sleep.

Run (no mpiexec needed):  python benchmarks/spikes/grow_universe.py 4 4
Findings are recorded in docs/architecture.md ("Membership spike").
"""
import os
import sys
import threading
import time

import numpy as np
from mpi4py import MPI

TAG_CTRL, TAG_PORT, TAG_RESULT = 77, 78, 79


def poll_recv(comm, source, tag, cap=0.05):
    """Receive without blocking inside MPI (sleep with backoff between probes)."""
    delay = 1e-4
    while not comm.Iprobe(source, tag):
        time.sleep(delay)
        delay = min(delay * 2, cap)
    return comm.recv(source=source, tag=tag)


def old_member(parent, sleep_s):
    universe = parent.Merge(high=True)
    done = threading.Event()

    def service():
        nonlocal universe
        while True:
            msg = poll_recv(parent, 0, TAG_CTRL)
            if msg[0] == "stop":
                done.set()
                return
            grown = universe.Accept(None, root=0).Merge(high=False)
            MPI.Win.Allocate(0, 8, comm=grown)
            universe = grown

    threading.Thread(target=service, daemon=True).start()
    time.sleep(sleep_s)  # the main thread is "busy": no MPI calls from it
    done.wait()


def new_member(parent):
    parent.Merge(high=True)
    world = MPI.COMM_WORLD
    port = poll_recv(parent, 0, TAG_PORT) if world.Get_rank() == 0 else None
    universe = world.Connect(port, root=0).Merge(high=True)
    win = MPI.Win.Allocate(0, 8, comm=universe)
    one, out = np.ones(1, np.int64), np.zeros(1, np.int64)
    t = time.perf_counter()
    for _ in range(1000):
        win.Lock(0, MPI.LOCK_SHARED)
        win.Fetch_and_op(one, out, 0, 0, MPI.SUM)
        win.Unlock(0)
    parent.send((time.perf_counter() - t) / 1000, dest=0, tag=TAG_RESULT)
    poll_recv(parent, 0, TAG_CTRL)


def head(n_old, n_new):
    info = MPI.Info.Create()
    info.Set("map_by", ":OVERSUBSCRIBE")
    info.Set("bind_to", "none")
    t0 = time.perf_counter()
    ic_a = MPI.COMM_SELF.Spawn(sys.executable, [__file__, "old"], maxprocs=n_old, info=info)
    universe = ic_a.Merge(high=False)
    t1 = time.perf_counter()
    ic_b = MPI.COMM_SELF.Spawn(sys.executable, [__file__, "new"], maxprocs=n_new, info=info)
    ic_b.Merge(high=False)
    t2 = time.perf_counter()
    port = MPI.Open_port()
    ic_b.send(port, dest=0, tag=TAG_PORT)
    for r in range(n_old):
        ic_a.send(("grow",), dest=r, tag=TAG_CTRL)
    grown = universe.Accept(port, root=0).Merge(high=False)
    win = MPI.Win.Allocate(8, 8, comm=grown)
    t3 = time.perf_counter()
    per_op = [poll_recv(ic_b, r, TAG_RESULT) for r in range(n_new)]
    win.Lock(0)
    counter = int(np.frombuffer(win.tomemory(), np.int64)[0])
    win.Unlock(0)
    print(f"old={n_old} new={n_new}: spawn A {t1 - t0:.3f} s, spawn B {t2 - t1:.3f} s, "
          f"grow universe + window {t3 - t2:.3f} s (size {grown.Get_size()}); "
          f"fetch_and_op median {1e6 * sorted(per_op)[len(per_op) // 2]:.1f} us while A sleeps; "
          f"counter {counter} (expected {1000 * n_new})", flush=True)
    for r in range(n_old):
        ic_a.send(("stop",), dest=r, tag=TAG_CTRL)
    for r in range(n_new):
        ic_b.send(("stop",), dest=r, tag=TAG_CTRL)
    MPI.Close_port(port)
    time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["old"]:
        old_member(MPI.Comm.Get_parent(), 3.0)
        os._exit(0)
    elif sys.argv[1:2] == ["new"]:
        new_member(MPI.Comm.Get_parent())
        os._exit(0)
    else:
        head(int(sys.argv[1]), int(sys.argv[2]))
