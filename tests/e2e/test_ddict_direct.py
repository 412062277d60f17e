"""DDict single-copy gets on one node: a large value is copied straight out of
the manager's memory (cross-memory attach), validated by the manager's epoch."""
from helpers import run_mpigroup, wait_no_processes, write_script

DIRECT = """
import os, signal, sys, time
import numpy as np
from mpigroup import DDict, DDictManagerError, Process
from mpigroup.ddict import cma

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


def gone(pid):  # exited or a zombie (a read just after kill() may still succeed, and rightly)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


deadline = time.monotonic() + 10
while not gone(pid) and time.monotonic() < deadline:
    time.sleep(0.01)
t = time.monotonic()
try:
    d["hot"]
except DDictManagerError as exc:
    print("DEAD", time.monotonic() - t < 10)
d.destroy()
"""


def _counts(stdout: str, tag: str) -> list[str]:
    return next(line for line in stdout.splitlines() if line.startswith(tag)).split()[1:]


def test_large_gets_copy_from_the_manager_and_never_tear(tmp_path):
    res = run_mpigroup(write_script(tmp_path, DIRECT), timeout=300, tag="ddict-direct")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "MISSING 'absent'" in res.stdout
    reads, retries = map(int, _counts(res.stdout, "UNCHANGED"))
    assert reads == 20 and retries == 0, res.stdout  # every get of the unchanged value was a direct copy
    concurrent = _counts(res.stdout, "CONCURRENT")
    assert concurrent[:2] == ["True", "True"], res.stdout  # several versions seen, none torn
    assert int(concurrent[2]) > 20, res.stdout
    assert "DEAD True" in res.stdout, res.stdout + res.stderr
    assert "RuntimeWarning" not in res.stderr, res.stderr
    assert wait_no_processes("ddict-direct") == []


def test_direct_gets_can_be_turned_off(tmp_path):
    res = run_mpigroup(write_script(tmp_path, DIRECT), timeout=300, tag="ddict-nodirect",
                       env={"MPIGROUP_DDICT_CMA": "0"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert _counts(res.stdout, "UNCHANGED") == ["0", "0"], res.stdout
    assert _counts(res.stdout, "CONCURRENT")[:3] == ["True", "True", "0"], res.stdout
    assert "DEAD True" in res.stdout, res.stdout + res.stderr
    assert wait_no_processes("ddict-nodirect") == []
