"""256 MiB and a large nested object through a 4 MiB queue ring.

Run by tests/e2e/test_sync.py.
"""
import hashlib, numpy as np
from mpigroup import Process, Queue

def send_big(q):
    arr = np.arange(256 * 2**20 // 8, dtype=np.int64)
    q.put(arr)
    q.put({"bytes": bytes(range(256)) * 40000, "nested": [np.ones((300, 300)), {"k": ("v", 1)}]})

q = Queue(capacity=4 << 20)  # far smaller than the payload: it streams through
p = Process(send_big, args=(q,)); p.start()
arr = q.get(timeout=120)
other = q.get(timeout=120)
p.join(60)
ok = arr.nbytes == 256 * 2**20 and int(arr[-1]) == arr.size - 1 and bool((arr[::4096] == np.arange(0, arr.size, 4096)).all())
print("LARGE", ok, arr.flags.writeable, len(other["bytes"]), float(other["nested"][0].sum()), other["nested"][1], p.exitcode)
