"""Four producers and four consumers over 100,000 checksummed messages.

Run by tests/e2e/test_sync.py.
"""
import zlib
from mpigroup import Process, Queue

N = 25_000

def producer(q, who):
    for i in range(N):
        q.put((who, i, zlib.crc32(b"%d:%d" % (who, i))))
    q.put(None)

def consumer(q, out):
    last = {}
    count = crc = 0
    in_order = True
    while True:
        item = q.get(timeout=120)
        if item is None:
            break
        who, i, c = item
        in_order &= i > last.get(who, -1)
        last[who] = i
        count += 1
        crc ^= c
    out.put((count, crc, in_order))

q, out = Queue(maxsize=1000), Queue()
procs = [Process(producer, args=(q, w)) for w in range(4)] + [Process(consumer, args=(q, out)) for _ in range(4)]
for p in procs:
    p.start()
results = [out.get(timeout=600) for _ in range(4)]
for p in procs:
    p.join(60)
expected = 0
for w in range(4):
    for i in range(N):
        expected ^= zlib.crc32(b"%d:%d" % (w, i))
total = sum(r[0] for r in results)
crc = 0
for r in results:
    crc ^= r[1]
print("STRESS", total, crc == expected, all(r[2] for r in results), [p.exitcode for p in procs])
