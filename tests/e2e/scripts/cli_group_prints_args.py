"""Two group members print; the script prints its arguments, world size and node count.

Run by tests/e2e/test_cli.py.
"""
import sys
from mpi4py import MPI
from mpigroup import ProcessGroup, ProcessTemplate, System
pg = ProcessGroup()
pg.add_process(2, ProcessTemplate(print, args=("member says hi",)))
pg.start(); pg.join(timeout=60)
print("ARGS", sys.argv[1:], "WORLD", MPI.COMM_WORLD.Get_size(), "NODES", System().nnodes)
