"""Queue, Event and the locks over RMA, end to end with real spawned ranks."""
import os

import pytest

from helpers import copy_script, run_mpigroup, run_mpigroup_private_shm, wait_no_processes


def test_queue_shared_by_groups_spawned_at_different_times_by_different_parents(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_queue_across_groups.py"), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "SHARED-OK True 0" in res.stdout


def test_progress_while_the_owner_is_stopped(tmp_path):
    """1000 round trips through queues held in the head's memory while every head thread is SIGSTOPped."""
    res = run_mpigroup(copy_script(tmp_path, "sync_owner_stopped.py"), timeout=180)
    assert res.returncode == 0, res.stderr
    assert "WOKE done=True a=0 b=0" in res.stdout, res.stdout + res.stderr
    assert "EXIT [0, 0]" in res.stdout


def test_progress_while_the_owner_sleeps(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_owner_sleeps.py"), str(tmp_path / "done"), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "AWAKE True" in res.stdout


def test_large_objects_stream_through_a_small_ring(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_large_objects.py"), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "LARGE True True 10240000 90000.0 {'k': ('v', 1)} 0" in res.stdout


def test_stress_four_producers_four_consumers_100k(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_stress.py"), timeout=900)
    assert res.returncode == 0, res.stderr
    assert "STRESS 100000 True True [0, 0, 0, 0, 0, 0, 0, 0]" in res.stdout


def test_primitives_across_processes(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_primitives.py"), timeout=240)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "COUNTER 150 [('done', 0), ('done', 1), ('done', 2)] [0, 0, 0]" in out, out + res.stderr
    assert "BOUNDED ok" in out and "RLOCK reentrant" in out
    assert "OWNER-DIED 3 True" in out
    assert "TIMEOUT True True True" in out
    assert "UNPICKLABLE True" in out


def test_no_processes_or_segments_left(tmp_path):
    script = copy_script(tmp_path, "sync_queue_across_groups.py")
    tag = f"sync-leak-check-{os.getpid()}"
    res, left = run_mpigroup_private_shm(script, timeout=240, tag=tag)
    assert res.returncode == 0, res.stderr
    assert wait_no_processes(tag) == []
    assert left == []  # this run's own /dev/shm (segments, arena) is empty at the end


def test_idle_waiters_sleep_on_their_doorbell_and_a_change_wakes_them(tmp_path):
    """Queue.get, Event.wait and Lock.acquire in workers sleep in futex() on their object's bell."""
    res = run_mpigroup(copy_script(tmp_path, "sync_waiters_sleep.py"), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "ASLEEP True True True" in res.stdout, res.stdout + res.stderr
    assert "WOKEN item True True [0, 0, 0]" in res.stdout, res.stdout + res.stderr
