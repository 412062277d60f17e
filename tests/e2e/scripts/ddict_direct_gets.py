"""Single-copy gets of a large value: unchanged, overwritten meanwhile, behind a killed manager.

Run by tests/e2e/test_ddict_direct.py.
"""
import os, signal, sys, time
import numpy as np
from mpigroup import DDict, DDictManagerError, Process
from mpigroup.ddict import cma
from mpigroup.base.procs import process_gone

N = 300_000  # above cma.MIN_BYTES: eligible for a direct copy

def writer(d, rounds):
    for i in range(1, rounds + 1):
        d["hot"] = np.full(N, i % 256, np.uint8)  # each overwrite frees the blob a reader may be copying
    d["done"] = True

d = DDict(1, total_mem=64 << 20, timeout=60)
d["hot"] = np.full(N, 7, np.uint8)
d["small"] = b"s" * 100
for _ in range(20):
    v = d["hot"]
    assert v.shape == (N,) and v.dtype == np.uint8 and (v == 7).all()
assert d["small"] == b"s" * 100
try:
    d["absent"]
except KeyError as exc:
    print("MISSING", exc)
print("UNCHANGED", cma.Counters.reads, cma.Counters.retries)

p = Process(writer, args=(d, 300))
p.start()
reads, versions = 0, set()
while "done" not in d:
    v = d["hot"]
    assert v.shape == (N,) and v.min() == v.max(), "a torn read"
    versions.add(int(v[0]))
    reads += 1
p.join(60)
assert p.exitcode == 0
assert (d["hot"] == 300 % 256).all()
print("CONCURRENT", reads > 0, len(versions) > 1, cma.Counters.reads, cma.Counters.retries)

pid = d.stats[0]["pid"]
os.kill(pid, signal.SIGKILL)  # the cached address now points into a dead process


deadline = time.monotonic() + 10
# exited or a zombie (a read just after kill() may still succeed, and rightly); process_gone
# also copes with a process reaped between opening /proc/PID/stat and reading it
while not process_gone(pid) and time.monotonic() < deadline:
    time.sleep(0.01)
t = time.monotonic()
try:
    d["hot"]
except DDictManagerError as exc:
    print("DEAD", time.monotonic() - t < 10)
d.destroy()
