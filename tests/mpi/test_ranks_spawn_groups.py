"""pytest-mpi tests: each rank of `mpiexec -n K python -m pytest --with-mpi` uses mpigroup.

A rank that was not started by `python -m mpigroup` becomes its own embedded
head on first use, so every rank can spawn groups independently.
"""
import os

import pytest
from mpi4py import MPI

from mpigroup import ProcessGroup, ProcessTemplate, System, cpu_count


def _square_to_file(path, x):
    with open(path, "w") as fh:
        fh.write(str(x * x))


@pytest.mark.mpi(min_size=2)
def test_every_rank_spawns_its_own_group(tmp_path_factory):
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    out = tmp_path_factory.mktemp(f"rank{rank}")
    pg = ProcessGroup(name=f"rank{rank}")
    pg.add_process(2, ProcessTemplate(_square_to_file, args=(str(out / "sq"), rank + 3)))
    pg.start()
    pg.join(timeout=120)
    codes = [c for _, c in pg.exit_status]
    ok = codes == [0, 0] and (out / "sq").read_text() == str((rank + 3) ** 2)
    assert all(comm.allgather(ok))


@pytest.mark.mpi(min_size=2)
def test_system_view_is_consistent_across_ranks():
    comm = MPI.COMM_WORLD
    view = (System().nnodes, cpu_count(), os.uname().nodename)
    views = comm.allgather(view)
    assert all(v[0] >= 1 and v[1] >= 1 for v in views)
    assert len(set(views)) == len({v[2] for v in views})  # same host -> same view
