"""A Process that starts a group of its own, and a Process that raises.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def leaf(path, i):
    open(f"{path}/leaf{i}", "w").write(str(os.getppid()))
def parent(path):
    g = ProcessGroup(name="inner")
    g.add_process(2, ProcessTemplate(leaf, args=(path, 1)))
    g.start(); g.join(timeout=60)
    sys.exit(0 if all(c == 0 for _, c in g.exit_status) else 9)
p = Process(parent, args=(sys.argv[1],))
p.start(); p.join(60)
q = Process(lambda: 1 / 0); q.start(); q.join(60)
emit(code=p.exitcode, alive=p.is_alive(), leaf=os.path.exists(sys.argv[1] + "/leaf1"),
     q_code=q.exitcode, q_error=str(q.error))
