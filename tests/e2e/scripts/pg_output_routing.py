"""Member output to a pipe, a file (argv[1]/o.txt), /dev/null and the terminal.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def talk(tag):
    print(f"out {tag}")
    print(f"err {tag}", file=sys.stderr)
pg = ProcessGroup(name="io", label_output=True)
pg.add_process(1, ProcessTemplate(talk, args=("pipe",), stdout=ProcessTemplate.PIPE, stderr=ProcessTemplate.PIPE))
pg.add_process(1, ProcessTemplate(talk, args=("file",), stdout=sys.argv[1] + "/o.txt", stderr=ProcessTemplate.STDOUT))
pg.add_process(1, ProcessTemplate(talk, args=("null",), stdout=ProcessTemplate.DEVNULL, stderr=ProcessTemplate.DEVNULL))
pg.add_process(1, ProcessTemplate(talk, args=("inherit",)))
pg.start(); pg.join(timeout=60)
p = pg.puids[0]
emit(out=pg.stdout(p), err=pg.stderr(p))
