"""Queues whose producer or consumer dies in the middle of a large frame: QueueBroken, never a hang.

Every bound here is the subprocess timeout of the run; nothing is timed.
"""
import pytest

from helpers import copy_script, run_mpigroup


@pytest.mark.parametrize("when", ["before", "after"])
def test_get_raises_queue_broken_when_the_producer_dies_mid_frame(tmp_path, when):
    res = run_mpigroup(copy_script(tmp_path, "queue_dies_mid_frame.py"), "writer", when, timeout=240)
    out = res.stdout + res.stderr
    assert "FIRST-GET QueueBroken" in res.stdout, out
    assert "SECOND-GET QueueBroken" in res.stdout, out
    assert "PUT-SMALL QueueBroken" in res.stdout, out
    assert "PUT-BIG QueueBroken" in res.stdout, out
    assert "EXITCODE -9" in res.stdout, out
    assert res.returncode == 0, out


@pytest.mark.parametrize("kind", ["queue", "simple"])
def test_put_stops_when_the_consumer_dies_mid_frame(tmp_path, kind):
    """Queue: the feeder stops at once and says what it dropped, so neither join_thread()
    nor the exit (flush_all) waits for it (issue 15, item 9). SimpleQueue: put raises."""
    res = run_mpigroup(copy_script(tmp_path, "queue_dies_mid_frame.py"), "reader", kind, timeout=240)
    out = res.stdout + res.stderr
    assert "KILLED" in res.stdout, out
    assert "GET-AFTER QueueBroken" in res.stdout, out
    threads = next(line for line in res.stdout.splitlines() if line.startswith("THREADS"))
    assert "mpigroup-queue-feeder" not in threads, out
    if kind == "queue":
        assert "queue feeder stopped, 2 item(s) put by this process dropped" in res.stderr, out
    else:
        assert "PUT QueueBroken" in res.stdout, out
    assert "EXITCODE -9" in res.stdout, out
    assert res.returncode == 0, out
