"""A worker dies in the middle of a frame of several tasks; prints how each task ended.

Run by tests/e2e/test_pool.py.
"""
import os
from mpigroup import Pool, WorkerLostError

def f(x):
    if x == 137:
        os._exit(3)
    return x * x

with Pool(2) as pool:
    pool.map(f, range(100), chunksize=1)          # short tasks: later frames carry several tasks
    results = [pool.apply_async(f, (x,)) for x in range(100, 300)]
    ok, running, lost_after, other = 0, [], [], []
    for x, r in zip(range(100, 300), results):
        try:
            assert r.get(120) == x * x
            ok += 1
        except WorkerLostError as exc:
            (running if "while running" in str(exc) else lost_after if "after running" in str(exc)
             else other).append(x)
    print("RUNNING", running)
    print("LOST-BEFORE-137", all(x < 137 for x in lost_after), "OTHER", other)
    print("ALL-ACCOUNTED", ok + len(running) + len(lost_after) == 200)
    print("STILL-WORKS", pool.map(f, range(5)))
