"""A restarting group ended by its walltime.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def short():
    time.sleep(0.2)
pg = ProcessGroup(name="restart", restart=True, walltime=3.0)
pg.add_process(2, ProcessTemplate(short))
t = time.monotonic()  # before start(): the walltime runs from inside start(), however long start() takes
pg.start()
pg.join(timeout=30)
emit(started=len(pg.exit_status), elapsed=time.monotonic() - t, running=pg.is_running(),
     expired=pg.walltime_expired)
