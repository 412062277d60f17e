"""Starts a sleeper and prints the /dev/shm segments the head has mapped.

Run by tests/e2e/test_lifecycle.py.
"""
from mpigroup import ProcessGroup, ProcessTemplate
import time

def sleeper():
    time.sleep(120)

pg = ProcessGroup(name="sleepy")
pg.add_process(1, ProcessTemplate(sleeper))
pg.start()
while pg.pid(pg.puids[0]) is None:
    time.sleep(0.05)
with open("/proc/self/maps") as fh:
    mine = sorted({line.split()[-1] for line in fh if " /dev/shm/" in line})
print("SEGMENTS", " ".join(mine), flush=True)
pg.join()
