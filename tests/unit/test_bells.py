"""Doorbells (mpigroup.sync.bells): futex sleep and wake between processes, no MPI."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from mpigroup.base.waiting import Backoff
from mpigroup.sync import bells


LONG = 600.0  # a sleep this long never ends by itself within a test: only a ring ends it


def _sleeper(run_dir: str, bell: int, armed, done) -> None:
    table = bells.open_existing(run_dir)
    seen = table.arm(bell)
    armed.set()
    table.sleep(bell, seen, LONG)
    done.set()


def test_futex_is_available_on_this_platform():
    """mpigroup runs on Linux; without futex its waits would poll (a silent slowdown): fail instead."""
    assert bells.available()


def test_a_ring_wakes_a_sleeper_in_another_process(tmp_path):
    table = bells.create(str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    armed, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_sleeper, args=(str(tmp_path), 5, armed, done))
    child.start()
    try:
        assert armed.wait(120), "the sleeper never armed its bell"
        assert table.armed(5)
        deadline = time.monotonic() + 120
        while bells.asleep_on(child.pid) != [5]:  # asleep in the kernel on bell 5's SEQ word
            assert time.monotonic() < deadline, "the sleeper never went to sleep on its bell"
            time.sleep(0.01)
        assert table.ring(5)
        assert done.wait(120), "a rung bell did not wake its sleeper"
        assert not table.armed(5)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_ringing_an_unarmed_bell_does_nothing(tmp_path):
    table = bells.create(str(tmp_path))
    before = table.seq(3)
    assert table.ring(3) is False
    assert table.seq(3) == before


def test_a_ring_clears_armed_and_changes_seq_of_that_bell_only(tmp_path):
    table = bells.create(str(tmp_path))
    seen = table.arm(7)
    other = table.seq(8)
    assert table.armed(7)
    assert table.ring(7) is True
    assert not table.armed(7)
    assert table.seq(7) != seen
    assert table.seq(8) == other


@pytest.mark.timeout(60)
def test_sleep_returns_at_once_when_the_bell_rang_after_arming(tmp_path):
    table = bells.create(str(tmp_path))
    seen = table.arm(2)
    table.ring(2)  # a waker ran between the waiter's last try and its sleep
    table.sleep(2, seen, LONG)  # returns at once (the futex word changed): no lost wake


def test_the_table_is_private_and_made_once(tmp_path):
    bells.create(str(tmp_path))
    path = tmp_path / bells.FILE_NAME
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        bells.create(str(tmp_path))


def test_a_member_without_the_table_gets_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        bells.open_existing(str(tmp_path))


def test_objects_map_to_bells_by_their_cache_line():
    assert bells.bell_of(0) == 0
    assert bells.bell_of(64) == 1
    assert bells.bell_of(64 * bells.BELLS) == 0
    assert all(0 <= bells.bell_of(off) < bells.BELLS for off in range(0, 1 << 20, 4096))


def test_wait_spins_then_arms_then_sleeps(tmp_path):
    table = bells.create(str(tmp_path))
    fences = []
    wait = bells.Wait(table, 4, lambda: fences.append(1), spin=0.0, yield_cpu=False, cap=0.01, fallback=None)
    wait.pause()  # first pause after the spin: arm, fence, return for one more try
    assert table.armed(4) and fences == [1]
    assert wait.seen is not None
    wait.pause(deadline=time.monotonic())  # sleeps at most until the deadline (now)
    assert wait.seen is None  # the next pause arms again


def test_wait_without_bells_uses_its_fallback():
    calls = []

    class Fallback(Backoff):
        def pause(self, deadline=None, sleep=time.sleep):
            calls.append(deadline)

    wait = bells.Wait(None, 0, lambda: None, spin=0.0, yield_cpu=False, cap=0.01, fallback=Fallback())
    wait.pause(123.0)
    assert calls == [123.0]


def test_no_wake_syscall_when_nobody_armed(tmp_path, monkeypatch):
    table = bells.create(str(tmp_path))
    woken = []
    monkeypatch.setattr(bells, "_futex", lambda *args: woken.append(args) or 0)
    for bell in range(bells.BELLS):
        table.ring(bell)
    assert woken == []
    table.arm(9)
    table.ring(9)
    assert len(woken) == 1 and woken[0][1] == bells.FUTEX_WAKE
    assert os.path.exists(table.path)
