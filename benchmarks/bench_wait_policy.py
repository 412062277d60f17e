"""How a waiter's spin and yield settings change small-message latency, quiet or beside busy processes.

Run from the repository root (it starts one mpigroup run per setting)::

    python benchmarks/bench_wait_policy.py [--busy 2] [--spins 0,20,100,300] [--yield 0,1]

For every (``MPIGROUP_SPIN_US``, ``MPIGROUP_SPIN_YIELD``) pair it runs
``python -m mpigroup benchmarks/bench_wait_policy.py --one``, which measures
2000 8 B Queue round trips and 300 Event ping-pongs (half the round trip is
the set-to-wake latency) with ``bench_queue.py``'s peers. ``--busy N`` keeps
N CPU-bound processes running beside every measurement.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def one() -> None:
    sys.path.insert(0, HERE)
    from bench_queue import MPIGroupPeer, event_latency, time_roundtrips

    peer = MPIGroupPeer()
    rt = time_roundtrips(peer, b"x" * 8, 2000) * 1e6
    peer.close()
    ev = event_latency("mpigroup", 300) * 1e6
    print(f"RESULT {rt:.1f} {ev:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--busy", type=int, default=0, metavar="N", help="CPU-bound processes beside each run")
    ap.add_argument("--spins", default="0,20,100,300", help="MPIGROUP_SPIN_US values, comma-separated")
    ap.add_argument("--yield", dest="yields", default="0,1", help="MPIGROUP_SPIN_YIELD values (0/1)")
    args = ap.parse_args()
    if args.one:
        one()
        return
    sys.path.insert(0, HERE)
    from bench_queue import busy_processes
    from harness import format_machine

    for line in format_machine():
        print(line)
    print(f"busy processes beside each run: {args.busy}\n")
    print("| spin (µs) | yield | 8 B round trip (µs) | Event set-to-wake (µs) |")
    print("|---|---|---|---|")
    with busy_processes(args.busy):
        for spin in args.spins.split(","):
            for yielding in args.yields.split(","):
                env = dict(os.environ, MPIGROUP_SPIN_US=spin, MPIGROUP_SPIN_YIELD=yielding)
                out = subprocess.run([sys.executable, "-m", "mpigroup", os.path.abspath(__file__), "--one"],
                                     env=env, capture_output=True, text=True, timeout=600)
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
                if line is None:
                    print(f"| {spin} | {yielding} | failed (exit {out.returncode}) | |")
                    continue
                rt, ev = line.split()[1:]
                print(f"| {spin} | {'yes' if yielding == '1' else 'no'} | {rt} | {ev} |", flush=True)


if __name__ == "__main__":
    main()
