"""DDict end to end: real manager ranks, real clients in spawned workers."""
import json
import os

from helpers import run_mpigroup, wait_no_processes, write_script

API = """
import os, socket, threading, time
import numpy as np
import mpigroup
from mpigroup import (DDict, DDictError, DDictFullError, DDictKeyError, DDictTimeoutError, Pool, Process,
                      ProcessGroup, ProcessTemplate)

d = DDict(managers_per_node=2, total_mem=8 << 20, timeout=60, name="api")
assert d.managers == 2
d["a"] = 1
d[("t", frozenset({"x", "y"}))] = {"nested": [1, 2]}
d[3] = "three"
assert d["a"] == 1 and d[("t", frozenset({"y", "x"}))] == {"nested": [1, 2]} and d[3] == "three"
assert len(d) == 3 and "a" in d and "nope" not in d and 3.5 not in d
try:
    d["nope"]
except KeyError as exc:
    assert isinstance(exc, DDictKeyError)
    print("MISSING", exc)
assert d.get("nope", 7) == 7
arr = np.arange(300_000, dtype=np.float64)
d["arr"] = arr
back = d["arr"]
assert np.array_equal(back, arr) and back.dtype == arr.dtype
assert sorted(map(str, d.keys())) == sorted(map(str, list(d)))
assert len(d.values()) == len(d.items()) == len(d) == 4
d.update({"u1": 1, "u2": 2}, u3=3)
d.update([(["unhashable", "key"], 1)])
assert d[["unhashable", "key"]] == 1
del d[["unhashable", "key"]]
assert d.pop("u1") == 1 and d.pop("u1", "gone") == "gone"
assert d.setdefault("sd", [1]) == [1] and d.setdefault("sd", [2]) == [1]
del d["sd"]
try:
    del d["sd"]
except KeyError:
    print("DEL-MISSING")
k, v = d.popitem()
assert k not in d
d.clear()
assert len(d) == 0 and d.keys() == []
try:
    d.popitem()
except KeyError:
    print("POPITEM-EMPTY")

# batches
d.put_many({f"k{i}": i for i in range(5000)})
assert d.get_many([f"k{i}" for i in range(0, 5000, 7)]) == list(range(0, 5000, 7))
assert d.get_many(["k1", "zz"], default=None) == [1, None]
try:
    d.get_many(["k1", "zz"])
except KeyError:
    print("GET-MANY-MISSING")
d.start_batch_put()
for i in range(100):
    d[f"b{i}"] = i
assert "b0" not in d          # still buffered
d.end_batch_put()
assert d["b99"] == 99 and len(d) == 5100

# exact memory limit: the old value survives a write that does not fit
d["keep"] = "old"
before = d.stats
try:
    d["keep"] = np.zeros(5 << 20, np.uint8)
except DDictFullError as exc:
    print("FULL", "budget" in str(exc))
assert d["keep"] == "old" and len(d) == 5101
assert [s["bytes_used"] for s in d.stats] == [s["bytes_used"] for s in before]
assert all(s["bytes_budget"] == (8 << 20) // 2 for s in before)

# fetch_add, concurrently from a pool
def bump(args):
    h, n = args
    for _ in range(n):
        h.fetch_add("counter", 1)
    return socket.gethostname(), os.getpid()

def bump_and_sign(h, n, i):
    bump((h, n))
    h[f"writer-{i}"] = os.getpid()

with Pool(3) as pool:  # handles work in pool workers (how many workers take part is up to the pool)
    pool.map(bump, [(d, 100)] * 3)
writers = [Process(bump_and_sign, args=(d, 100, i)) for i in range(3)]  # three writers at once, for sure
for p in writers:
    p.start()
for p in writers:
    p.join(120)
assert d["counter"] == 600, d["counter"]
print("FETCH-ADD", d["counter"], len({d[f"writer-{i}"] for i in range(3)}))
for i in range(3):
    del d[f"writer-{i}"]

# wait_for: a process spawned later writes the key
def late_writer(h):
    time.sleep(1.0)
    h["late"] = "here"

p = Process(late_writer, args=(d,))
p.start()
t = time.monotonic()
assert d.wait_for("late", timeout=60) == "here"
p.join(30)
print("WAIT-FOR", round(time.monotonic() - t, 1) >= 0.5)
try:
    d.wait_for("never", timeout=0.5)
except DDictTimeoutError:
    print("WAIT-TIMEOUT")

# handles: a ProcessGroup member, serialize/attach in another group spawned later
def member(h, s):
    other = DDict.attach(s)
    other[f"member-{os.getpid()}"] = h["a" if "a" in h else "keep"]
    h.fetch_add("members", 1)

g = ProcessGroup(name="members")
g.add_process(2, ProcessTemplate(member, args=(d, d.serialize())))
g.start(); g.join()
assert d["members"] == 2 and len([k for k in d.keys() if str(k).startswith("member-")]) == 2
try:
    DDict.attach("bm90IGEgZGRpY3Q=")
except ValueError as exc:
    print("ATTACH-BAD", exc)

# locality, pinned handles
assert sorted(map(str, d.local_keys())) == sorted(map(str, d.keys()))
m0, m1 = d.manager(0), d.manager(1)
assert len(m0) + len(m1) == len(d)
assert d.which_manager("k1") in (0, 1)
m1["pinned"] = 1
assert "pinned" in m1 and "pinned" not in m0
try:
    d.manager(2)
except ValueError:
    print("BAD-MANAGER")

# checkpoints
assert d.checkpoint_id == 0
assert d.checkpoint() == 1 and d.checkpoint_id == 1
d["k1"] = "changed"; d["fresh"] = 1; del d["k2"]
assert d.rollback() == 0
assert d["k1"] == 1 and "fresh" not in d and d["k2"] == 2
try:
    d.rollback()
except DDictError as exc:
    print("NO-ROLLBACK", "no earlier checkpoint" in str(exc))

# placement by policy: managers bound to CPU 0 of this host
from mpigroup import Policy
with DDict(managers_per_node=2, policy=Policy(host_name=socket.gethostname(), cpu_affinity=[0]),
           total_mem=1 << 20) as pd:
    pd["p"] = 1
    print("POLICY", pd.managers, [s["host"] == socket.gethostname() for s in pd.stats],
          [os.sched_getaffinity(s["pid"]) == {0} for s in pd.stats])

# bad input
try:
    DDict(n_nodes=1, policy=Policy(host_name=socket.gethostname()))
except ValueError as exc:
    print("BAD-ARG", exc)
try:
    DDict(policy="node1")
except TypeError as exc:
    print("BAD-POLICY", exc)
for bad in (dict(managers_per_node=0), dict(total_mem=-1), dict(timeout=0), dict(n_nodes=99)):
    try:
        DDict(**bad)
    except ValueError as exc:
        print("BAD-ARG", exc)
try:
    d[threading.Lock()] = 1
except TypeError:
    print("BAD-KEY")
try:
    d["x"] = threading.Lock()
except TypeError as exc:
    print("BAD-VALUE", "DDict" in str(exc))

print("STATS", [(s["manager"], s["host"] == socket.gethostname(), s["keys"] > 0) for s in d.stats])
stale = DDict.attach(d.serialize())
d.destroy()
for handle in (d, stale):
    try:
        handle["a"]
    except DDictError as exc:
        print("USE-AFTER-DESTROY", "destroyed" in str(exc))
print("DONE")
"""


def test_ddict_api_end_to_end(tmp_path):
    res = run_mpigroup(write_script(tmp_path, API), timeout=300, tag="ddict-api")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("MISSING 'nope'", "DEL-MISSING", "POPITEM-EMPTY", "GET-MANY-MISSING", "FULL True",
                 "FETCH-ADD 600 3", "WAIT-FOR True", "WAIT-TIMEOUT", "ATTACH-BAD not a serialized DDict",
                 "BAD-MANAGER", "NO-ROLLBACK True", "BAD-KEY", "BAD-VALUE True",
                 "STATS [(0, True, True), (1, True, True)]", "DONE"):
        assert line in out, (line, out, res.stderr)
    assert out.count("BAD-ARG") == 5, out
    assert "POLICY 2 [True, True] [True, True]" in out and "BAD-POLICY" in out, out
    assert out.count("USE-AFTER-DESTROY True") == 2, out
    assert wait_no_processes("ddict-api") == []


STRESS = """
import hashlib, random
from mpigroup import DDict, Event, ProcessGroup, ProcessTemplate

N = 50_000

def value(w, i):
    return (w, i, hashlib.blake2b(f"{w}:{i}".encode(), digest_size=8).hexdigest())

def writer(d, w, done):
    batch = {}
    for i in range(N):
        if i % 10 == 0:
            d[(w, i)] = value(w, i)      # some single puts ...
        else:
            batch[(w, i)] = value(w, i)  # ... and batches
        if len(batch) == 1000:
            d.put_many(batch)
            batch = {}
    d.put_many(batch)
    d.fetch_add("writers-done", 1)

def reader(d, r, done):
    rng = random.Random(r)
    keys = [(rng.randrange(4), rng.randrange(N)) for _ in range(N)]
    seen = 0
    for start in range(0, N, 500):  # while the writers write: whatever is there must be right
        chunk = keys[start:start + 500]
        for k, v in zip(chunk, d.get_many(chunk, default=None)):
            if v is not None:
                assert v == value(*k), (k, v)
                seen += 1
    d.wait_for("all-written", timeout=600)
    for start in range(0, N, 2000):   # afterwards every key is there
        chunk = keys[start:start + 2000]
        assert d.get_many(chunk) == [value(*k) for k in chunk]
    d[("reader", r)] = seen

d = DDict(managers_per_node=2, total_mem=512 << 20, timeout=300)
done = Event()
g = ProcessGroup(name="stress")
for w in range(4):
    g.add_process(1, ProcessTemplate(writer, args=(d, w, done)))
for r in range(4):
    g.add_process(1, ProcessTemplate(reader, args=(d, r, done)))
g.start()
import time
while d.get("writers-done", 0) < 4:
    time.sleep(0.2)
d["all-written"] = True
g.join(600)
bad = [s for s in g.exit_status if s[1] != 0]
assert not bad, bad
expected = hashlib.sha256()
for w in range(4):
    for i in range(N):
        expected.update(repr(((w, i), value(w, i))).encode())
items = sorted((k, v) for k, v in d.items() if isinstance(k, tuple) and k[0] != "reader")
got = hashlib.sha256()
for k, v in items:
    got.update(repr((k, v)).encode())
print("ENTRIES", len(items), "CHECKSUM", got.hexdigest() == expected.hexdigest())
print("READERS", all(("reader", r) in d for r in range(4)))
d.destroy()
"""


def test_four_writers_four_readers_50k_keys_each_checksummed(tmp_path):
    res = run_mpigroup(write_script(tmp_path, STRESS), timeout=900, tag="ddict-stress")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ENTRIES 200000 CHECKSUM True" in res.stdout, res.stdout + res.stderr
    assert "READERS True" in res.stdout
    assert wait_no_processes("ddict-stress") == []


PERSIST = """
import os, signal, sys
import numpy as np
from mpigroup import DDict

path = sys.argv[1]
d = DDict(managers_per_node=2, total_mem=64 << 20, name="ckpt")
d.put_many({f"k{i}": i * i for i in range(2000)})
d["arr"] = np.arange(100_000)
d.checkpoint(); d.checkpoint()
d.persist(path)
d["after"] = "not persisted"
d["k5"] = "changed after persist"
print("PERSISTED", d.checkpoint_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the job dies without any cleanup
"""

RESTORE = """
import sys
import numpy as np
from mpigroup import DDict, DDictError, DDictFullError

path = sys.argv[1]
d = DDict(managers_per_node=1, restore_from=path, total_mem=64 << 20)  # another shard count: re-sharded
assert len(d) == 2001, len(d)
assert all(v == int(k[1:]) ** 2 for k, v in d.items() if k != "arr")
assert np.array_equal(d["arr"], np.arange(100_000))
assert "after" not in d and d["k5"] == 25
print("RESTORED", len(d), d.checkpoint_id)
d.destroy()
try:
    DDict(restore_from=path, total_mem=1000)
except DDictFullError as exc:
    print("RESTORE-FULL", "restoring" in str(exc))
try:
    DDict(restore_from=path + "-nowhere")
except DDictError as exc:
    print("RESTORE-MISSING", "manifest.json" in str(exc))
"""


def test_persist_survives_a_killed_job_and_restores_elsewhere(tmp_path):
    path = str(tmp_path / "saved")
    first = run_mpigroup(write_script(tmp_path, PERSIST, "persist.py"), path, timeout=180, tag="ddict-kill")
    assert "PERSISTED 2" in first.stdout, first.stdout + first.stderr
    assert first.returncode != 0  # it was killed
    assert wait_no_processes("ddict-kill", timeout=30) == []
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["managers"] == 2 and sum(s["entries"] for s in manifest["shards"]) == 2001
    second = run_mpigroup(write_script(tmp_path, RESTORE, "restore.py"), path, timeout=180, tag="ddict-restore")
    assert second.returncode == 0, second.stdout + second.stderr
    for line in ("RESTORED 2001 2", "RESTORE-FULL True", "RESTORE-MISSING True"):
        assert line in second.stdout, (line, second.stdout, second.stderr)
    assert wait_no_processes("ddict-restore") == []


FAILURES = """
import os, signal, time
from mpigroup import DDict, DDictManagerError, DDictTimeoutError

d = DDict(managers_per_node=2, total_mem=16 << 20, timeout=3)
keys = {d.which_manager(f"k{i}"): f"k{i}" for i in range(50)}
for k in keys.values():
    d[k] = 1
pids = [s["pid"] for s in d.stats]

os.kill(pids[0], signal.SIGSTOP)           # a manager that does not answer
t = time.monotonic()
try:
    d[keys[0]]
except DDictTimeoutError as exc:
    print("TIMEOUT", round(time.monotonic() - t) <= 10, exc)
os.kill(pids[0], signal.SIGCONT)
assert d[keys[0]] == 1                       # and it recovers

# a client that dies before reading a reply larger than its reply ring
import numpy as np
from mpigroup import Process
from mpigroup.ddict import ops
from mpigroup.ddict.keys import encode_key
d.put_many({keys[0]: np.zeros(6 << 20, np.uint8)}, timeout=60)  # the reply ring is 4 MiB

def ask_and_die(h, key):
    h._send(h.which_manager(key), ops.Op.GET, ([encode_key(key)],))
    os._exit(0)

p = Process(ask_and_die, args=(d, keys[0]))
p.start(); p.join(30)
t = time.monotonic()
assert d.get_many([keys[0]], timeout=30)[0].nbytes == 6 << 20
print("DEAD-READER", round(time.monotonic() - t, 1) < 10)
d[keys[0]] = 1

os.kill(pids[1], signal.SIGKILL)           # a manager that dies
t = time.monotonic()
try:
    d[keys[1]] = 2
except DDictManagerError as exc:
    print("DEAD", round(time.monotonic() - t) <= 10, "exited" in str(exc), "manager 1" in str(exc))
try:
    len(d)
except DDictManagerError:
    print("DEAD-LEN")
assert d[keys[0]] == 1                       # the live shard still answers
d.destroy()
print("DESTROYED")
"""


def test_timeouts_and_a_dead_manager_are_reported_never_a_hang(tmp_path):
    res = run_mpigroup(write_script(tmp_path, FAILURES), timeout=180, tag="ddict-fail")
    assert res.returncode == 0, res.stdout + res.stderr
    for line in ("TIMEOUT True", "DEAD-READER True", "DEAD True True True", "DEAD-LEN", "DESTROYED"):
        assert line in res.stdout, (line, res.stdout, res.stderr)
    assert wait_no_processes("ddict-fail") == []


def test_example_pool_fills_and_main_reads_back(tmp_path):
    from helpers import REPO

    res = run_mpigroup(REPO / "examples" / "3_ddict.py", "--keys", "20000", "--workers", "2",
                       timeout=300, tag="ddict-example")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "main read 20000 keys back" in res.stdout and "all correct" in res.stdout, res.stdout
    assert "2 pool workers wrote" in res.stdout
    assert "keys held on this node" in res.stdout and ": 20000" in res.stdout
    assert wait_no_processes("ddict-example") == []
