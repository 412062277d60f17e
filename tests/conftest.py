"""Shared test setup (the layout and the markers are described in tests/README.md).

* tests/ itself is on sys.path, so every kind of test imports the shared
  helpers as ``from helpers import ...``, also when pytest is given a single
  file or folder.
* MPI defaults (root allowances, oversubscription, fault isolation) are put in
  os.environ once, so every mpiexec/python subprocess the tests start gets
  them, exactly as `mpigroup run` would.
* Every test gets the marker of its folder (unit, e2e, mpi, compat, cluster),
  so ``pytest -m unit`` runs the fast tests alone.
* tests/mpi/ holds pytest-mpi tests; they only make sense under
  `mpiexec -n K python -m pytest --with-mpi`, which tests/e2e/test_pytest_mpi.py
  runs. A plain `pytest` does not collect them (no silent skips). The driver
  cannot live in tests/mpi/: pytest-mpi skips every test whose keywords hold
  "mpi" when --with-mpi is not given, and a test's keywords hold its folders.
* tests/compat/ runs CPython's own multiprocessing tests with the "mpigroup"
  start method; its pytest process becomes an mpigroup head, so the suite runs
  in a subprocess of its own (tests/compat/test_cpython_compat.py, which sets
  MPIGROUP_COMPAT_RUN), never in-process.
"""
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from mpigroup.base.mpienv import apply_defaults  # noqa: E402

apply_defaults(os.environ, local=False)  # not a rank: the runs it starts decide for themselves

KINDS = ("unit", "e2e", "mpi", "compat", "cluster")  # folder = marker
MPI_DRIVER = TESTS / "e2e" / "test_pytest_mpi.py"  # runs tests/mpi under mpiexec: marked e2e and mpi

collect_ignore = []
if "--with-mpi" not in sys.argv:
    collect_ignore.append("mpi")
if os.environ.get("MPIGROUP_COMPAT_RUN"):
    collect_ignore.append("compat/test_cpython_compat.py")
else:
    collect_ignore.append("compat/test_cpython_multiprocessing.py")


def pytest_collection_modifyitems(items):
    """Mark every test with its folder's kind (``-m`` deselects after this hook).

    The driver of tests/mpi gets ``mpi`` too, so that a plain ``pytest -m mpi``
    runs the pytest-mpi tests. pytest-mpi registers its plugin in
    pytest_configure, after this conftest, so its collection hook (which skips
    tests marked ``mpi`` when --with-mpi is not given) has run before this one.
    """
    for item in items:
        path = item.path.resolve()
        try:
            kind = path.relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/
            continue
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
        if path == MPI_DRIVER and "--with-mpi" not in sys.argv:
            item.add_marker(pytest.mark.mpi)
