"""Labelled output from members on every host: LINES lines each, none lost."""
import sys

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System

LINES = int(sys.argv[1])


def talk(i):
    for n in range(LINES):
        print(f"LINE {i} {n}")
    print(f"ERRLINE {i}", file=sys.stderr)


names = [Node(n).hostname for n in System().nodes]
with ProcessGroup(name="talk", label_output=True) as g:
    for i, host in enumerate(names * 2):
        g.add_process(1, ProcessTemplate(talk, args=(i,), policy=Policy(host_name=host)))
    g.start()
    g.join(timeout=120)
print("MEMBERS", len(names) * 2, flush=True)
