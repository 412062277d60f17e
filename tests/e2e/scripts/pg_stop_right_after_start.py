"""stop() right after start(), then members that print without a newline.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def sleeper():
    time.sleep(30)
def partial(tag):
    print(tag, end="")
g = ProcessGroup(name="early-stop")
g.add_process(4, ProcessTemplate(sleeper))
g.start(); g.stop(patience=5)
h = ProcessGroup(name="lab", label_output=True)
h.add_process(2, ProcessTemplate(partial, args=("part",)))
h.start(); h.join(timeout=30)
emit(codes=[c for _, c in g.exit_status])
