"""Policies from the YAML file argv[2] and a `with Policy` block; bad policies rejected before spawning.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def report(path):
    with open(f"{path}/aff.{os.environ['MPIGROUP_PUID']}", "w") as fh:
        json.dump(sorted(os.sched_getaffinity(0)), fh)
pg = ProcessGroup(name="pol")
for pol in Policy.from_yaml(sys.argv[2]):
    pg.add_process(1, ProcessTemplate(report, args=(sys.argv[1],), policy=pol))
with Policy(cpu_affinity=[1]):
    pg.add_process(1, ProcessTemplate(report, args=(sys.argv[1],)))
pg.start(); pg.join(timeout=60)
aff = [json.load(open(f"{sys.argv[1]}/aff.{p}")) for p in pg.puids]
errors = []
for bad in [Policy(host_name="no-such-host"), Policy(cpu_affinity=[4096]), Policy(gpu_affinity=[0])]:
    g = ProcessGroup(name="bad", policy=bad)
    g.add_process(1, ProcessTemplate(report, args=(sys.argv[1],)))
    try:
        g.start()
    except PolicyError as exc:
        errors.append(str(exc))
emit(aff=aff, errors=errors, spawned=len(os.listdir(sys.argv[1])))
