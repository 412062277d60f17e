"""Members raise ValueError; prints the RemoteError the join raises.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def broken(x):
    raise ValueError(f"bad input {x}")
pg = ProcessGroup(name="err")
pg.add_process(2, ProcessTemplate(broken, args=(42,)))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    cause = exc.__cause__
    emit(kind=type(cause).__name__, text=str(cause), rank=cause.rank, host=cause.host, puid=cause.puid,
         exc_type=cause.exc_type)
