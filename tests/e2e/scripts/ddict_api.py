"""The whole DDict API from the head, pool workers, group members and a process spawned later.

Run by tests/e2e/test_ddict.py.
"""
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
