"""Members that ignore SIGINT and SIGTERM; a join timeout, then stop() up to SIGKILL.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def stubborn():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.1)
pg = ProcessGroup(name="stubborn")
pg.add_process(2, ProcessTemplate(stubborn))
pg.start()
try:
    pg.join(timeout=0.5)
    emit(timeout=False)
except TimeoutError:
    emit(timeout=True)
t = time.time()
pg.stop(patience=1.0)
emit(status=pg.exit_status, took=time.time() - t)
