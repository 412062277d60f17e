"""An executable target, and templates for missing or non-executable programs (cwd argv[1]).

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

pg = ProcessGroup(name="exe", ignore_error_on_exit=True)
pg.add_process(2, ProcessTemplate("/bin/sh", args=["-c", "echo from-exec; exit 4"]))
pg.start(); pg.join(timeout=60)
errors = []
for bad in ["/no/such/program", "./not_exec.sh", "no-such-program-on-path"]:
    try:
        ProcessTemplate(bad, cwd=sys.argv[1])
    except (FileNotFoundError, PermissionError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
emit(status=pg.exit_status, errors=errors)
