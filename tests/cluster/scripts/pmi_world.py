"""One MPI_COMM_WORLD of a compiled MPI program spanning every host (PMI pass-through)."""
import os
import sys

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System

exe, outdir, per_host = sys.argv[1], sys.argv[2], int(sys.argv[3])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
names = [Node(n).hostname for n in System().nodes]
for r in range(rounds):
    group = ProcessGroup(pmi=True, name="hello")
    for rank in range(per_host * len(names)):
        host = names[rank % len(names)]
        group.add_process(1, ProcessTemplate(exe, env={"MPIGROUP_EXAMPLE_VAR": f"rank-{rank}"},
                                             policy=Policy(host_name=host),
                                             stdout=os.path.join(outdir, f"rank{rank}.out")))
    group.start()
    group.join(timeout=120)
    print("STATUS", " ".join(str(c) for _, c in group.exit_status), flush=True)
    group.close()
