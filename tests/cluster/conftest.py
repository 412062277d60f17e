"""Fixtures for the multi-host tests: clusters of namespace hosts (see minicluster.py).

Every test here runs real ``mpiexec`` across hosts h1..hN that have their own
network, PID, mount and UTS namespaces and are reached over ssh, as nodes are.
On a machine where such hosts cannot be made (not root, no namespaces) the
tests are skipped with the reason; under CI (``CI`` set) that is an error
instead, because CI here can make them and must run them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional, Sequence

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from minicluster import Cluster, ensure_packages, unavailable_reason  # noqa: E402

from mpigroup.base.mpienv import mpiexec_path  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent / "scripts"
REPO = Path(__file__).resolve().parents[2]


def _require_cluster_support() -> None:
    try:
        ensure_packages()
    except Exception as exc:  # noqa: BLE001 (reported as the skip/fail reason)
        reason = f"cannot install the cluster's packages: {exc}"
    else:
        reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"multi-host tests must run in CI, but: {reason}")
        pytest.skip(reason)


class ClusterRun:
    """A cluster plus the way tests launch mpigroup on it."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.names = cluster.names

    def env(self, extra: Optional[dict] = None) -> dict:
        env = dict(os.environ)
        env.update(self.cluster.mpi_env())
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["MPIGROUP_TEST_TAG"] = uuid.uuid4().hex
        env.update(extra or {})
        return env

    def mpiexec(self, script: str, *args: str, hosts: Optional[Sequence[str]] = None,
                timeout: float = 180, env: Optional[dict] = None,
                mpiexec_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """``mpiexec --host h1:1,..  -n H python -m mpigroup SCRIPT ARGS`` inside h1."""
        hosts = list(hosts or self.names)
        cmd = [mpiexec_path(os.environ), "--host", ",".join(f"{h}:1" for h in hosts), "-n", str(len(hosts)),
               *mpiexec_args, sys.executable, "-m", "mpigroup", str(SCRIPTS / script), *args]
        proc = self.cluster.popen(hosts[0], cmd, cwd=str(REPO), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=self.env(env), start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # mpiexec and what it started on this host, not the host
            out, err = proc.communicate()
            raise AssertionError(f"timed out after {timeout} s: {cmd}\n{out[-3000:]}\n{err[-3000:]}") from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def popen(self, argv: Sequence[str], host: Optional[str] = None, env: Optional[dict] = None,
              **kwargs) -> subprocess.Popen:
        return self.cluster.popen(host or self.names[0], argv, cwd=str(REPO), env=self.env(env), **kwargs)


@pytest.fixture(scope="session")
def cluster2():
    _require_cluster_support()
    with Cluster(2) as cluster:
        yield ClusterRun(cluster)


@pytest.fixture(scope="session")
def cluster3():
    _require_cluster_support()
    with Cluster(3) as cluster:
        yield ClusterRun(cluster)


@pytest.fixture(params=[2, 3], ids=["2hosts", "3hosts"])
def cluster(request):
    """The same test on 2 and on 3 hosts."""
    return request.getfixturevalue(f"cluster{request.param}")


@pytest.fixture
def fresh_cluster():
    """A cluster of its own, for tests that destroy hosts."""
    _require_cluster_support()
    made = []

    def make(nhosts: int, **kwargs) -> ClusterRun:
        cluster = Cluster(nhosts, **kwargs).start()
        made.append(cluster)
        return ClusterRun(cluster)

    yield make
    for cluster in made:
        cluster.close()
