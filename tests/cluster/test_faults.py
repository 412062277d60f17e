"""Faults across hosts: a whole host lost, the head's host lost, two nodes with one hostname."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import SCRIPTS
from mpigroup.base.mpienv import mpiexec_path


def _mpigroup_cmd(cluster_run, script, hosts):
    return [mpiexec_path(os.environ), "--host", ",".join(f"{h}:1" for h in hosts), "-n", str(len(hosts)),
            sys.executable, "-m", "mpigroup", str(SCRIPTS / script)]


def _wait_line(proc, word, timeout):
    """Read stdout until a line starting with ``word`` (returns it) or timeout."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(word):
            return line, seen
    raise AssertionError(f"no {word!r} line within {timeout} s; got {seen!r}")


def test_a_lost_host_ends_the_job_promptly_and_leaves_no_process(fresh_cluster):
    """Open MPI 5.0's launcher (PRRTE 3.0) aborts the whole job when it loses a daemon
    (errmgr_dvm.c: "We cannot recover from this failure"); mpigroup cannot keep the
    run going past that, but the job must end at once and leave nothing behind."""
    run = fresh_cluster(3)
    proc = run.popen(_mpigroup_cmd(run, "hostloss.py", run.names), stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
    try:
        line, _ = _wait_line(proc, "READY", 120)
        assert line.split()[1] == "h3"
        t0 = time.monotonic()
        run.cluster.kill_host("h3")  # every process of the host, sshd and its PRRTE daemon too
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert took < 30, took
    assert ("lost communication with a remote daemon" in out or "daemon failed to report back" in out) \
        and "h3" in out, out
    _assert_hosts_empty(run, ("h1", "h2"), 20)


def test_losing_the_heads_host_ends_every_process_on_the_others(fresh_cluster):
    run = fresh_cluster(3)
    proc = run.popen(_mpigroup_cmd(run, "hostloss.py", run.names), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    try:
        _wait_line(proc, "READY", 120)
        assert run.cluster.host_pids("h3"), "the members should be running on h3"
        run.cluster.kill_host("h1")  # mpiexec, the head and its agent with it
        _assert_hosts_empty(run, ("h2", "h3"), 30)
    finally:
        proc.kill()
        proc.communicate()


def _assert_hosts_empty(run, hosts, timeout):
    """Within ``timeout`` s no process is left on ``hosts`` (but each host's own sshd)."""
    deadline = time.monotonic() + timeout
    left = {h: run.cluster.host_pids(h) for h in hosts}
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {h: run.cluster.host_pids(h) for h in hosts}
    assert not any(left.values()), {h: _cmdlines(p) for h, p in left.items()}


def _cmdlines(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                out.append(fh.read().replace(b"\0", b" ").decode()[:120])
        except OSError:
            pass
    return out


def test_two_nodes_with_one_hostname_give_a_clear_error_not_a_hang(fresh_cluster):
    """Open MPI names both nodes by their (same) hostname, so its ranks cannot connect;
    mpigroup says so within MPIGROUP_BOOT_TIMEOUT instead of hanging."""
    run = fresh_cluster(2, hostnames=["node", "node"])
    assert run.cluster.run("h2", ["hostname"], capture_output=True).stdout.strip() == "node"
    t0 = time.monotonic()
    proc = run.mpiexec("placement.py", env={"MPIGROUP_BOOT_TIMEOUT": "8"}, timeout=120,
                       mpiexec_args=["-x", "MPIGROUP_BOOT_TIMEOUT"])
    took = time.monotonic() - t0
    # (the exit status is PRRTE's: with state_base_recoverable it does not count a rank
    # killed by a signal as a failure, so only the message and the time are checked)
    assert "could not start and reach each other within 8 s" in proc.stderr, proc.stderr[-3000:]
    assert "same hostname" in proc.stderr and "'node'" in proc.stderr
    assert took < 60, took


def test_a_killed_owner_leaves_nothing_the_next_cluster_does_not_remove():
    """SIGKILL of the process that built a cluster: the kernel removes its hosts; its key directory
    is removed by the next cluster that starts (it records its owner's pid)."""
    import shutil
    import tempfile
    from pathlib import Path

    from minicluster import remove_stale_dirs

    tmp_path = Path(tempfile.mkdtemp(prefix="killed-owner-", dir="/var/tmp"))  # hosts have their own /tmp
    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from minicluster import Cluster\n"
        "c = Cluster(2, workdir=%r).start()\n"
        "print(c.pid_of('h1'), c.pid_of('h2'), flush=True)\n"
        "time.sleep(600)\n") % (str(SCRIPTS.parent), str(tmp_path / "mpigroup-cluster-victim"))],
        stdout=subprocess.PIPE, text=True)
    try:
        inits = [int(p) for p in owner.stdout.readline().split()]
        assert len(inits) == 2 and all(os.path.exists(f"/proc/{p}") for p in inits)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in inits) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in inits)  # the hosts went with their owner
    assert (tmp_path / "mpigroup-cluster-victim").exists()
    assert remove_stale_dirs(tmp_path) == [str(tmp_path / "mpigroup-cluster-victim")]
    assert not (tmp_path / "mpigroup-cluster-victim").exists()
    shutil.rmtree(tmp_path)
