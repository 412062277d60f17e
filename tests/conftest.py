"""Shared test setup.

* MPI defaults (root allowances, oversubscription, fault isolation) are put in
  os.environ once, so every mpiexec/python subprocess the tests start gets
  them, exactly as `mpigroup run` would.
* tests/mpi/ holds pytest-mpi tests; they only make sense under
  `mpiexec -n K python -m pytest --with-mpi`, which tests/test_pytest_mpi.py
  runs. A plain `pytest` does not collect them (no silent skips).
"""
import os
import sys

from mpigroup.base.mpienv import apply_defaults

apply_defaults(os.environ)

collect_ignore = []
if "--with-mpi" not in sys.argv:
    collect_ignore.append("mpi")
# tests/compat/ runs CPython's own multiprocessing tests with the "mpigroup"
# start method; its pytest process becomes an mpigroup head, so it runs in a
# subprocess of its own (tests/test_cpython_compat.py), never in-process.
if not os.environ.get("MPIGROUP_COMPAT_RUN"):
    collect_ignore.append("compat")
