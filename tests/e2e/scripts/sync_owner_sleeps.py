"""1000 round trips while the head sleeps in pure Python; argv[1] is the marker file.

Run by tests/e2e/test_sync.py.
"""
import os, sys, time
from mpigroup import Event, Process, Queue

def side(a, b, done, n, first, marker):
    for i in range(n):
        if first:
            a.put(i); assert b.get(timeout=60) == i
        else:
            b.put(a.get(timeout=60))
    if first:
        done.set()
        open(marker, "w").close()  # tells the owner without MPI

marker = sys.argv[1]
a, b, done = Queue(), Queue(), Event()
procs = [Process(side, args=(a, b, done, 1000, True, marker)), Process(side, args=(a, b, done, 1000, False, marker))]
for p in procs:
    p.start()
for p in procs:  # wait until both run, then sleep (pure Python, no MPI call) while they work
    while p.pid is None:
        time.sleep(0.01)
deadline = time.monotonic() + 150
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(0.05)
print("AWAKE", done.is_set(), flush=True)
for p in procs:
    p.join(30)
