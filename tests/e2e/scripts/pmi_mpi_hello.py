"""Runs the MPI program argv[1] as a PMI world of 4 ranks, rank i's output in argv[2]/rank<i>.txt.

Run by tests/e2e/test_pmi.py.
"""
import sys
import time
from mpigroup import ProcessGroup, ProcessTemplate, Policy
exe, out = sys.argv[1], sys.argv[2]
pg = ProcessGroup(pmi=True, name="hello")
for i in range(4):
    pg.add_process(1, ProcessTemplate(exe, env={"MPIGROUP_EXAMPLE_VAR": f"value{i}"},
                                      policy=Policy(cpu_affinity=[i % 2]), stdout=f"{out}/rank{i}.txt"))
pg.start()
pg.join(timeout=120)
print("STATUS", [code for _, code in pg.exit_status], flush=True)
