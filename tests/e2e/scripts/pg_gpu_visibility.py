"""One member per GPU policy writes the value of the variable argv[2] into argv[1].

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def show(path, var):
    import os
    with open(f"{path}/gpu.{os.environ['MPIGROUP_PUID']}", "w") as fh:
        fh.write(os.environ.get(var, "unset"))
policies = System().gpu_policies()
pg = ProcessGroup(name="gpus")
for pol in policies:
    pg.add_process(1, ProcessTemplate(show, args=(sys.argv[1], sys.argv[2]), policy=pol))
pg.start(); pg.join(timeout=60)
emit(seen=[open(f"{sys.argv[1]}/gpu.{p}").read() for p in pg.puids], node=[Node(0).num_gpus, Node(0).gpu_vendor])
