"""Run the pytest-mpi suite (tests/mpi) under a real mpiexec, as users of pytest-mpi do."""
import os
import re
import subprocess
import sys

from helpers import REPO
from mpigroup.base.mpienv import mpiexec_path


def test_pytest_mpi_suite_passes_on_two_ranks():
    cmd = [mpiexec_path(os.environ), "-n", "2", sys.executable, "-m", "pytest", "--with-mpi", "-q", "--color=no",
           "-p", "no:cacheprovider", str(REPO / "tests" / "mpi")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    passed = [int(n) for n in re.findall(r"(\d+) passed", proc.stdout)]
    assert passed and min(passed) >= 2, proc.stdout  # both tests ran on every rank, none skipped
    assert "skipped" not in proc.stdout
