"""A PMI world of 2 whose rank 1 exits with 3; prints the exit codes and how long the join took.

Run by tests/e2e/test_pmi.py.
"""
import sys, time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main():
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        sys.exit(3)
g = ProcessGroup(pmi=True, name="partial", ignore_error_on_exit=True)
g.add_process(2, ProcessTemplate(rank_main))
g.start()
t = time.time()
g.join(timeout=60)
print("STATUS", [c for _, c in g.exit_status], "TOOK", round(time.time() - t, 1))
