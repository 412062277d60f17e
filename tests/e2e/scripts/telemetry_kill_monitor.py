"""SIGKILLs the node monitor once its samples arrive and goes on for 7 s.

Run by tests/e2e/test_telemetry.py.
"""
import os, signal, time
from mpigroup.runtime import context
from mpigroup.telemetry import service

svc = service.current()
members = context.current().head.members
deadline = time.monotonic() + 30
# once its samples arrive, the monitor has joined the shared-object universe (a set killed while
# joining leaves the head's universe thread in MPI_Comm_accept: a known gap of the runtime)
while not any(m == "system_load_average" for m, _ in svc.latest()) and time.monotonic() < deadline:
    time.sleep(0.1)
os.kill(members[svc._monitors.puids[0]].pid, signal.SIGKILL)
time.sleep(7)
print("SURVIVED", flush=True)
