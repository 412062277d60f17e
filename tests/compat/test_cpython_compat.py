"""CPython's multiprocessing tests against the "mpigroup" start method (test_cpython_multiprocessing.py).

They run in a subprocess, `python -m mpigroup -m pytest`, whose pytest process is the head. Every
test either passes or is skipped with a stated reason; none may fail.
"""
import collections
import os
import re
import subprocess
import sys

from helpers import REPO


def test_cpython_multiprocessing_suite_passes_with_the_mpigroup_start_method():
    env = dict(os.environ, MPIGROUP_COMPAT_RUN="1")
    res = subprocess.run(
        [sys.executable, "-m", "mpigroup", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120", "-rA",
         "tests/compat/test_cpython_multiprocessing.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    outcomes = collections.Counter()
    for status, cls in re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED)\S* .*?(WithProcessesTest\w+)", res.stdout, re.M):
        outcomes[(cls, status)] += 1
    print("\n".join(f"{c} {s}: {n}" for (c, s), n in sorted(outcomes.items())))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert not any(s in ("FAILED", "ERROR") for _, s in outcomes)
    for cls in ("Process", "Queue", "Event", "Lock", "Semaphore", "Condition", "Barrier", "Pool", "PoolWorkerErrors",
                "PoolWorkerLifetime"):
        assert outcomes[(f"WithProcessesTest{cls}", "PASSED")] > 0, (cls, outcomes)
