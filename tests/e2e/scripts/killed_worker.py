"""SIGKILLs one member of a group of two and prints the error the join reports.

Run by tests/e2e/test_lifecycle.py.
"""
import os, signal, time
from mpigroup import ProcessGroup, ProcessTemplate, ProcessGroupError
def sleeper():
    time.sleep(120)
pg = ProcessGroup(name="victim")
pg.add_process(2, ProcessTemplate(sleeper))
pg.start()
while pg.pid(pg.puids[1]) is None:
    time.sleep(0.05)
os.kill(pg.pid(pg.puids[1]), signal.SIGKILL)
try:
    pg.join(timeout=30)
except ProcessGroupError as exc:
    print("REPORTED", exc, flush=True)
