"""Members sleep on the last host; the test kills that whole host; the run goes on.

Prints READY once the remote members run, then LOST with how long the head
took to report them, then a group on the surviving hosts, then DONE.
"""
import time

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System
from mpigroup.errors import ProcessGroupError


def sleeps():
    time.sleep(600)


def ok():
    return None


names = [Node(n).hostname for n in System().nodes]
victim = names[-1]
g = ProcessGroup(name="doomed")
g.add_process(2, ProcessTemplate(sleeps, policy=Policy(host_name=victim)))
g.start()
while any(g.pid(p) is None for p in g.puids):
    time.sleep(0.05)
print("READY", victim, flush=True)
t0 = None
while True:  # the test kills the host after READY; time from the first sign of loss
    try:
        g.join(timeout=1.0)
        break
    except ProcessGroupError as exc:
        print("ERROR", str(exc).replace("\n", " ")[:300], flush=True)
        break
    except TimeoutError:
        continue
print("LOST", ",".join(str(c) for _, c in g.exit_status), flush=True)
g.close()
survivors = names[:-1]
with ProcessGroup(name="after") as g2:
    for host in survivors:
        g2.add_process(1, ProcessTemplate(ok, policy=Policy(host_name=host)))
    g2.start()
    g2.join(timeout=60)
    print("AFTER", ",".join(str(c) for _, c in g2.exit_status), flush=True)
try:
    with ProcessGroup(name="onto-lost") as g3:
        g3.add_process(1, ProcessTemplate(ok, policy=Policy(host_name=victim)))
        g3.start()
    print("ONTO-LOST started", flush=True)
except Exception as exc:
    print("ONTO-LOST", type(exc).__name__, flush=True)
print("DONE", flush=True)
