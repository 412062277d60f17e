"""ROUNDS consecutive group starts with members on every host."""
import sys
import time

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System

ROUNDS = int(sys.argv[1])


def member(r, i):
    return None


names = [Node(n).hostname for n in System().nodes]
for r in range(ROUNDS):
    t0 = time.monotonic()
    with ProcessGroup(name=f"round{r}") as g:
        for i, host in enumerate(names * 2):
            g.add_process(1, ProcessTemplate(member, args=(r, i), policy=Policy(host_name=host)))
        g.start()
        g.join(timeout=60)
        codes = [c for _, c in g.exit_status]
    print(f"ROUND {r} {sum(c == 0 for c in codes)} {len(codes)} {time.monotonic() - t0:.2f}", flush=True)
