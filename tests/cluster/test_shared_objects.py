"""Queue, Event, the locks, Pool and DDict across 2 and 3 namespace hosts, under a real mpiexec.

Every object is created on one host and used from the others (and some are
created on another host and used on the head's); workers on other hosts reach
the arena through their node agent and the head (docs/architecture.md,
"Shared objects across hosts").
"""
from __future__ import annotations

import re
import subprocess

import pytest

from test_faults import _mpigroup_cmd, _wait_line
from test_runtime_core import assert_clean

ALL_CHECKS = ["queue", "created_elsewhere", "joinable_simple", "grandchildren", "event", "locks", "owner_died",
              "semaphores", "condition_barrier", "pool", "executor", "ddict", "large"]


def test_every_object_works_from_every_host(cluster):
    proc = cluster.mpiexec("objects.py", timeout=420)
    assert_clean(proc)
    out = proc.stdout
    for check in ALL_CHECKS:
        assert re.search(rf"^OK {check}\b", out, re.M), (check, out[-3000:], proc.stderr[-3000:])
    assert f"OK pool hosts={len(cluster.names)}" in out, out
    assert f"OK executor hosts={len(cluster.names)}" in out, out
    assert f"OK ddict managers={len(cluster.names)}" in out, out
    assert "OK large mib=256" in out, out
    assert out.rstrip().endswith("DONE"), out[-2000:]


@pytest.mark.timeout(1200)
def test_100000_checksummed_messages_4_producers_4_consumers_over_3_hosts(cluster3):
    """None lost, none duplicated, each producer's order kept (checked in the script)."""
    proc = cluster3.mpiexec("objects.py", "stress", timeout=1100, env={"OBJECTS_STRESS_MESSAGES": "100000"})
    assert_clean(proc)
    assert "OK stress messages=100000" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_a_lost_host_gives_lock_and_queue_errors_on_the_survivors(fresh_cluster):
    """The agent of the last host dies (its workers with it) while one of them holds a Lock
    and another is in the middle of a frame: the head gets LockOwnerDied and QueueBroken
    within the calls' timeouts, and the run ends cleanly."""
    run = fresh_cluster(3)
    proc = run.popen(_mpigroup_cmd(run, "objects_hostloss.py", run.names), stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
    try:
        line, _ = _wait_line(proc, "READY", 180)
        victim = line.split()[1]
        assert victim == run.names[-1]
        # the agent is the victim's initial rank; its workers die with it (PR_SET_PDEATHSIG)
        run.cluster.run(victim, ["pkill", "-9", "-f", "mpigroup .*objects_hostloss.py"])
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lock = re.search(r"^LOCK LockOwnerDied after ([\d.]+) s: .*puid \d+ on another host", out, re.M)
    queue = re.search(r"^QUEUE QueueBroken after ([\d.]+) s: .*producer \(puid \d+ on another host\) died", out,
                      re.M)
    assert lock and queue, out[-4000:]
    assert float(lock.group(1)) < 60 and float(queue.group(1)) < 60, out[-4000:]
    assert "EXITS [-9, -9]" in out and out.rstrip().endswith("DONE"), out[-4000:]
    assert proc.returncode == 0, out[-4000:]
