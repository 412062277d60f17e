"""A restarting group, polled while it restarts, then stopped and closed.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def flappy():
    time.sleep(0.05)
g = ProcessGroup(name="flappy", restart=True)
g.add_process(3, ProcessTemplate(flappy))
g.start()
t = time.time()
while time.time() - t < 2:
    g.is_running(); g.exit_status; g.in_error_state   # racing the restart monitor must be safe
g.stop(patience=1); g.close()
time.sleep(1.0)
emit(running=g.is_running(), restarted=len(g.exit_status) > 3,
     unfinished=[p for p, c in g.exit_status if c is None])
