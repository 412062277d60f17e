"""A group of five members (one exits with 3); prints exit codes, puids and the node view.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def member(i, path):
    with open(f"{path}/m{i}", "w") as fh:
        fh.write(f"{os.getpid()} {os.environ['MPIGROUP_PUID']}")
pg = ProcessGroup(name="basic")
pg.add_process(4, ProcessTemplate(member, args=(7, sys.argv[1])))
pg.add_process(1, ProcessTemplate(lambda: sys.exit(3)))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    emit(error=str(exc))
pg.join(timeout=60)
emit(status=pg.exit_status, puids=pg.puids, nnodes=System().nnodes, cpus=cpu_count(),
     node=[Node(0).hostname, Node(0).num_cpus, Node(socket.gethostname()).num_gpus])
