"""Four writers and four readers over 50,000 keys each, checksummed.

Run by tests/e2e/test_ddict.py.
"""
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
