"""Pool states and errors without a runtime (no MPI)."""
import sys

import mpigroup
from mpigroup import errors
from mpigroup.pool import BrokenPool, PoolTerminated, WorkerLostError
from mpigroup.pool.pool import CLOSE, RUN, TERMINATE, PoolState, _lost_traceback
from mpigroup.runtime.protocol import MemberState, MemberStatus


def test_pool_errors_are_the_error_tree_s():
    assert WorkerLostError is errors.WorkerLostError and PoolTerminated is errors.PoolTerminated
    assert BrokenPool is errors.BrokenPool and issubclass(BrokenPool, RuntimeError)
    assert mpigroup.WorkerLostError is WorkerLostError and mpigroup.PoolTerminated is PoolTerminated


def test_importing_the_pool_does_not_initialise_mpi():
    import subprocess

    code = "import sys, mpigroup.pool, mpigroup.group, mpigroup.worker.main; print('mpi4py.MPI' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_pool_states_keep_multiprocessing_values():
    assert (RUN, CLOSE, TERMINATE) == ("RUN", "CLOSE", "TERMINATE")
    assert PoolState("RUN") is RUN


def test_lost_traceback_names_the_signal():
    st = MemberStatus(3, MemberState.EXITED, 77, "h", 0, -9, None)
    assert "pid 77" in _lost_traceback(st) and "killed by signal 9" in _lost_traceback(st)
    st = MemberStatus(3, MemberState.EXITED, 77, "h", 0, 7, None)
    assert "exited with code 7" in _lost_traceback(st)
