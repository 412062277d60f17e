"""terminate() and kill() right after start().

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def sleeper():
    time.sleep(30)
p = Process(sleeper); p.start(); p.terminate(); p.join(20)
g = ProcessGroup(name="early", ignore_error_on_exit=True)
g.add_process(3, ProcessTemplate(sleeper)); g.start(); g.kill(); g.join(timeout=20)
emit(p=p.exitcode, g=[c for _, c in g.exit_status])
