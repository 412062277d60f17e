"""A PMI group whose ranks get API_TOKEN (from TEST_SECRET) and flag in argv[1] that they run.

Run by tests/e2e/test_pmi.py.
"""
import os, sys, time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main(flag_dir):
    from mpi4py import MPI
    assert os.environ["API_TOKEN"].startswith("hunter2-")
    open(f"{flag_dir}/up{MPI.COMM_WORLD.Get_rank()}", "w").close()
    time.sleep(3)
pg = ProcessGroup(pmi=True, name="secretive")
pg.add_process(3, ProcessTemplate(rank_main, args=(sys.argv[1],), env={"API_TOKEN": os.environ["TEST_SECRET"]}))
pg.start(); pg.join(timeout=120)
print("STATUS", [c for _, c in pg.exit_status])
