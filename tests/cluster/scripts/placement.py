"""Placement over hosts: every policy kind; each member says where it ran.

Prints ``NODES``, one ``WANT tag i host`` per member (``*`` = any host) and
members print ``RAN tag i hostname node``; the test matches them.
"""
import os
import socket

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System

P, D = Policy.Placement, Policy.Distribution


def ran(tag, i):
    node = os.environ.get("MPIGROUP_NODE") or os.environ.get("PMIX_HOSTNAME")
    print(f"RAN {tag} {i} {socket.gethostname()} {node}", flush=True)


system = System()
nodes = [Node(n) for n in system.nodes]
names = [n.hostname for n in nodes]
print("NODES", system.nnodes, " ".join(names), " ".join(str(n.num_cpus) for n in nodes), flush=True)
H = len(names)
cases = {
    "name": [(Policy(placement=P.HOST_NAME, host_name=h), h) for h in reversed(names)],
    "id": [(Policy(placement=P.HOST_ID, host_id=k), names[k]) for k in range(H)],
    "any": [(Policy(placement=P.ANYWHERE), "*") for _ in range(H)],
    "rr": [(Policy(placement=P.ANYWHERE, distribution=D.ROUNDROBIN), names[i % H]) for i in range(2 * H)],
}
cpus = [n.num_cpus for n in nodes]
block, want = [], []
for k, c in enumerate(cpus):
    want += [names[k]] * c
cases["block"] = [(Policy(placement=P.ANYWHERE, distribution=D.BLOCK), want[i]) for i in range(len(want))]
for tag, members in cases.items():
    with ProcessGroup(name=tag) as group:
        for i, (policy, host) in enumerate(members):
            print(f"WANT {tag} {i} {host}", flush=True)
            group.add_process(1, ProcessTemplate(ran, args=(tag, i), policy=policy))
        group.start()
        group.join(timeout=60)
        assert all(code == 0 for _, code in group.exit_status), group.exit_status
print("DONE", flush=True)
