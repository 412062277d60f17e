"""Failure and cleanup: unhandled exceptions, Ctrl-C and killed workers leave nothing behind.

Every run carries a unique MPIGROUP_TEST_TAG in its environment; spawned
ranks inherit it, so the process table tells whether anything survived.
"""
import os
import shutil
import signal
import tempfile
import subprocess
import sys
import time
import uuid

import pytest

from helpers import copy_script, processes_with_tag, run_mpigroup, wait_no_processes
from mpigroup.base.mpienv import mpiexec_path


@pytest.fixture


def run_tmp():
    """A TMPDIR of this test's run alone: its run directories (and PRRTE's) go there, no one else's."""
    path = tempfile.mkdtemp(prefix="mgt-")  # short: PRRTE puts socket paths under it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_dirs(tmp: str) -> set:
    """Run directories under ``tmp``: in it (singleton) or in PRRTE's per-job directory (mpiexec)."""
    return {os.path.join(root, d) for root, dirs, _ in os.walk(tmp) for d in dirs if d.startswith("mpigroup-")}


@pytest.mark.parametrize("np", [None, 2])


def test_unhandled_exception_exits_nonzero_and_cleans_up(tmp_path, np, run_tmp):
    tag = uuid.uuid4().hex
    before = run_dirs(run_tmp)
    proc = run_mpigroup(copy_script(tmp_path, "sleepy_group.py"), "crash", np=np, tag=tag, timeout=120,
                        env={"TMPDIR": run_tmp})
    assert proc.returncode != 0
    assert "user script failed on purpose" in proc.stderr
    assert wait_no_processes(tag) == []
    assert run_dirs(run_tmp) - before == set()


@pytest.mark.parametrize("np", [None, 2])


def test_ctrl_c_stops_every_process(tmp_path, np, run_tmp):
    tag = uuid.uuid4().hex
    before = run_dirs(run_tmp)
    script = copy_script(tmp_path, "sleepy_group.py")
    cmd = [sys.executable, "-m", "mpigroup", str(script)]
    if np:
        cmd = [mpiexec_path(os.environ), "-n", str(np), *cmd]
    env = dict(os.environ, MPIGROUP_TEST_TAG=tag, TMPDIR=run_tmp)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    assert "STARTED" in proc.stdout.readline()
    deadline = time.monotonic() + 30
    while len(processes_with_tag(tag)) < 3 + (np or 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # what the terminal sends to mpiexec on Ctrl-C
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("run did not end after SIGINT")
    assert proc.returncode != 0
    assert wait_no_processes(tag) == []
    assert run_dirs(run_tmp) - before == set()  # the run directory went too


def test_killed_worker_is_reported_and_run_ends_clean(tmp_path):
    tag = uuid.uuid4().hex
    script = copy_script(tmp_path, "killed_worker.py")
    proc = run_mpigroup(script, np=2, tag=tag)
    assert proc.returncode == 0, proc.stderr
    assert "REPORTED" in proc.stdout and "exited with -9" in proc.stdout
    assert wait_no_processes(tag) == []  # the surviving sleeper was stopped at shutdown


def test_killing_the_head_ends_the_whole_job(tmp_path, run_tmp):
    """SIGKILL of rank 0 under mpiexec: agents and workers notice and leave; nothing hangs."""
    tag = uuid.uuid4().hex
    before = run_dirs(run_tmp)
    script = copy_script(tmp_path, "sleepy_group.py")
    cmd = [mpiexec_path(os.environ), "-n", "2", sys.executable, "-m", "mpigroup", str(script)]
    env = dict(os.environ, MPIGROUP_TEST_TAG=tag, TMPDIR=run_tmp)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    assert "STARTED" in proc.stdout.readline()
    head = [p for p in processes_with_tag(tag) if str(script) in " ".join(p.cmdline())
            and p.environ().get("PMIX_RANK") == "0" and "mpigroup.worker" not in p.cmdline()]
    assert len(head) == 1, head
    head_pid = head[0].pid
    os.kill(head_pid, signal.SIGKILL)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        left = [(p.pid, p.status(), " ".join(p.cmdline())[:120]) for p in processes_with_tag(tag)]
        proc.kill()
        pytest.fail(f"job hung after its head was killed; left: {left}")
    assert wait_no_processes(tag, timeout=15) == []
    assert run_dirs(run_tmp) - before == set()


def test_sigterm_to_a_singleton_head_leaves_no_shared_memory_segment(tmp_path):
    """The urgent (SIGTERM) shutdown unlinks the singleton's own /dev/shm segments too (issue 15)."""
    tag = uuid.uuid4().hex
    script = copy_script(tmp_path, "shm_segments.py")
    proc = subprocess.Popen([sys.executable, "-m", "mpigroup", str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, MPIGROUP_TEST_TAG=tag),
                            cwd=tmp_path)
    line = proc.stdout.readline()
    assert line.startswith("SEGMENTS"), line + proc.stderr.read()
    segments = line.split()[1:]
    assert segments and all(os.path.exists(p) for p in segments)  # this run's own, nobody else's
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert wait_no_processes(tag) == []
    assert [p for p in segments if os.path.exists(p)] == []


def _start_sleepy_head(tmp_path, run_tmp: str, tag: str):
    """A singleton head (its own process) with one sleeping worker; returns it and its /dev/shm segments."""
    script = copy_script(tmp_path, "shm_segments.py")
    proc = subprocess.Popen([sys.executable, "-m", "mpigroup", str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=dict(os.environ, MPIGROUP_TEST_TAG=tag, TMPDIR=run_tmp))
    line = proc.stdout.readline()
    assert line.startswith("SEGMENTS"), line + proc.stderr.read()
    return proc, line.split()[1:]


def _own_run_dirs(run_tmp: str, pid: int) -> list:
    return [d for d in run_dirs(run_tmp) if os.path.basename(d).startswith(f"mpigroup-{pid}-")]


def test_the_next_start_reclaims_what_a_sigkilled_singleton_left(tmp_path, run_tmp):
    """SIGKILL leaves a run dir and /dev/shm segments; the next head's start removes them, a live run's stay."""
    live_tag, dead_tag = uuid.uuid4().hex, uuid.uuid4().hex
    live, live_segments = _start_sleepy_head(tmp_path, run_tmp, live_tag)
    dead, dead_segments = _start_sleepy_head(tmp_path, run_tmp, dead_tag)
    try:
        live_dirs, dead_dirs = _own_run_dirs(run_tmp, live.pid), _own_run_dirs(run_tmp, dead.pid)
        assert len(live_dirs) == 1 and len(dead_dirs) == 1, run_dirs(run_tmp)
        assert dead_segments and all(os.path.exists(p) for p in dead_segments)
        dead.kill()
        dead.communicate(timeout=60)
        assert wait_no_processes(dead_tag, timeout=60) == []
        assert os.path.isdir(dead_dirs[0]) and all(os.path.exists(p) for p in dead_segments)  # left behind

        proc = run_mpigroup(copy_script(tmp_path, "print_ran.py"), env={"TMPDIR": run_tmp}, timeout=120)
        assert proc.returncode == 0 and "RAN" in proc.stdout, proc.stderr
        assert not os.path.exists(dead_dirs[0])
        assert [p for p in dead_segments if os.path.exists(p)] == []
        assert os.path.isdir(live_dirs[0])  # a live head's run is untouched
        assert all(os.path.exists(p) for p in live_segments)
        assert live.poll() is None
    finally:
        for proc in (live, dead):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
    assert wait_no_processes(live_tag, timeout=60) == []
