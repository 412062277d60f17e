"""sys.exit codes -1, 256, 3 and None, and a member that leaves a child behind.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

import subprocess
def code(c):
    sys.exit(c)
def leaves_child():
    subprocess.Popen(["sleep", "47"])
g = ProcessGroup(name="codes", ignore_error_on_exit=True)
for c in (-1, 256, 3, None):
    g.add_process(1, ProcessTemplate(code, args=(c,)))
g.add_process(1, ProcessTemplate(leaves_child))
t = time.time(); g.start(); g.join(timeout=30)
time.sleep(0.5)
alive = subprocess.run(["pgrep", "-x", "sleep"], capture_output=True, text=True).stdout.split()
own = [p for p in alive if "47" in open(f"/proc/{p}/cmdline").read()] if alive else []
emit(codes=[c for _, c in g.exit_status], took=time.time() - t, leftover=own)
