"""A Python target in PMI mode: three ranks allreduce and write their world into argv[1].

Run by tests/e2e/test_pmi.py.
"""
import sys
import time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main(out):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    total = comm.allreduce(comm.Get_rank())
    open(f"{out}/py{comm.Get_rank()}", "w").write(f"{comm.Get_size()} {total}")
pg = ProcessGroup(pmi=True, name="pyworld")
pg.add_process(3, ProcessTemplate(rank_main, args=(sys.argv[1],)))
pg.start(); pg.join(timeout=120)
print("STATUS", [c for _, c in pg.exit_status])
