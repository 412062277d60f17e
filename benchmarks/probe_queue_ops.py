"""Where the time of a small Queue message goes: each RMA call, and each half of a put/get.

Run on the mpigroup runtime::

    python -m mpigroup benchmarks/probe_queue_ops.py [--n 20000]

A spawned worker (a member of the universe, like a Queue's peer) times, in a
loop with nothing waiting: each passive-target call a small message uses
(``MPI_Compare_and_swap``, ``MPI_Get_accumulate``, ``MPI_Put``, ``MPI_Get``,
``MPI_Accumulate``, ``MPI_Win_flush``), the one-step put and get of an 8 B
frame, pickling, and the ``futex`` wake/no-op costs of the doorbells. Means in
microseconds, so the per-message budget can be read off (docs/architecture.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import mpigroup


def probe(n: int, out) -> None:

    from mpigroup.sync import rma, serialize, universe
    from mpigroup.sync.primitives import SharedWords

    uni = universe.current()
    q = mpigroup.Queue()
    scratch = SharedWords(1)
    word = scratch._word(0)  # a word nobody else touches
    buf8 = bytearray(8)
    results = {}

    def timed(name, fn):
        for _ in range(min(1000, n)):
            fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        results[name] = (time.perf_counter() - t0) / n * 1e6

    with uni.lock:
        timed("Compare_and_swap + Flush (rma.cas)", lambda: rma.cas(uni, word, 0, 0))
        timed("Get_accumulate + Flush (rma.load)", lambda: rma.load(uni, word))
        timed("Fetch_and_op + Flush (rma.fetch_add)", lambda: rma.fetch_add(uni, word, 0))
        timed("Accumulate + Flush (rma.store)", lambda: rma.store(uni, word, 0))
        timed("Accumulate, no flush", lambda: rma.store(uni, word, 0, flush=False))
        timed("Put 8 B", lambda: rma.put(uni, q._data, buf8))
        timed("Get 8 B", lambda: rma.get(uni, q._data, buf8))
        timed("Win_flush", lambda: uni.win.Flush(universe.HEAD))
        timed("uni.lock acquire+release", lambda: (uni.lock.acquire(), uni.lock.release()))
    payload = b"x" * 8
    timed("serialize.dumps (8 B bytes)", lambda: serialize.dumps(payload))
    pieces = serialize.dumps(payload)
    size = serialize.frame_size(pieces)
    body = bytes(memoryview(b"".join(bytes(p) for p in pieces))[8:])
    timed("serialize.loads (8 B bytes)", lambda: serialize.loads(memoryview(body)))

    def put_get():
        q._try_put_small(pieces, size, True)
        q._try_get_small()

    timed("one-step put + get of an 8 B frame (no wait)", put_get)
    t0 = time.perf_counter()
    for _ in range(n):
        q._try_put_small(pieces, size, True)
    results["one-step put (8 B frame)"] = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        q._try_get_small()
    results["one-step get (8 B frame)"] = (time.perf_counter() - t0) / n * 1e6
    timed("Queue.put + Queue.get (8 B, same process)", lambda: (q.put(payload), q.get()))
    bells = getattr(uni, "bells", None)
    if bells is not None:
        timed("doorbell ring, nobody armed (one memory read)", lambda: bells.ring(0))

        def ring_armed():
            bells.arm(1)
            bells.ring(1)

        timed("doorbell arm + ring with futex wake (nobody sleeping)", ring_armed)
    out.put(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="calls per measure")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import format_machine

    for line in format_machine():
        print(line)
    out = mpigroup.Queue()
    p = mpigroup.Process(probe, args=(args.n, out))
    p.start()
    results = out.get(timeout=600)
    p.join()
    print()
    print("| operation (in a spawned worker, nothing waiting) | µs per call |")
    print("|---|---|")
    for name, us in results.items():
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
