"""A Python PMI world of 3 whose rank 1 raises.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def rank_main():
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        raise RuntimeError("rank 1 fails")
    MPI.COMM_WORLD.Barrier()
g = ProcessGroup(pmi=True, name="pyfail")
g.add_process(3, ProcessTemplate(rank_main))
g.start()
t = time.time()
try:
    g.join(timeout=60)
    emit(raised=False)
except ProcessGroupError as exc:
    emit(raised=True, took=time.time() - t, text=str(exc), cause=str(exc.__cause__))
g.close()
