"""Three groups of Python and exec members, then the MPI program argv[1] as a PMI world; all print.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

for i in range(3):
    g = ProcessGroup(name=f"g{i}")
    g.add_process(2, ProcessTemplate(print, args=(f"python-group-{i}",)))
    g.add_process(1, ProcessTemplate("/bin/echo", args=[f"exec-group-{i}"]))
    g.start(); g.join(timeout=60)
w = ProcessGroup(pmi=True, name="w")
w.add_process(2, ProcessTemplate(sys.argv[1]))
w.start(); w.join(timeout=60)
