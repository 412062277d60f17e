"""Batch sizing of the Pool's task frames (pure logic)."""
import collections

from mpigroup.pool.batching import BatchPlanner


def records(n, key=1, size=10, calls=1):
    return collections.deque((1, i, key, b"fn", "call", b"x" * size, calls) for i in range(n))


def test_unmeasured_and_slow_functions_go_one_task_per_frame():
    planner = BatchPlanner(2)
    out = records(100)
    assert len(planner.take(out, 0)) == 1
    planner.observe(1, 1, 0.5)  # slow
    assert len(planner.take(out, 0)) == 1


def test_short_tasks_are_batched_up_to_the_time_target_and_a_fair_share():
    planner = BatchPlanner(4, target=2e-3, max_tasks=64)
    planner.observe(1, 10, 10 * 40e-6)  # 40 us per task -> 50 tasks per 2 ms
    out = records(1000)
    assert len(planner.take(out, 0)) == 50
    planner.observe(2, 10, 10 * 1e-6)  # 1 us per task -> capped at max_tasks
    assert len(planner.take(records(1000, key=2), 0)) == 64
    out = records(40)
    assert len(planner.take(out, 0)) == 10  # 40 tasks over 4 workers
    out = records(40)
    assert len(planner.take(out, 60)) == 25  # tasks already in flight count as backlog


def test_frames_hold_one_function_and_respect_the_byte_cap():
    planner = BatchPlanner(1, max_bytes=100)
    planner.observe(1, 1, 1e-6)
    planner.observe(2, 1, 1e-6)
    out = records(3, key=1) + records(3, key=2)
    assert [r[2] for r in planner.take(out, 0)] == [1, 1, 1]
    out = records(50, key=2, size=30)
    assert len(planner.take(out, 0)) == 4  # 4 x 30 bytes reaches the cap


def test_single_mode_never_batches():
    planner = BatchPlanner(1, single=True)
    planner.observe(1, 100, 1e-4)
    assert len(planner.take(records(10), 0)) == 1


def test_estimate_is_an_average_that_follows_changes():
    planner = BatchPlanner(1)
    planner.observe(1, 1, 1e-3)
    planner.observe(1, 1, 1e-5)
    assert 1e-5 < planner.estimate(1) < 1e-3
    assert planner.estimate(7) is None


def test_map_chunks_count_their_calls():
    planner = BatchPlanner(1, target=2e-3)
    planner.observe(1, 100, 100 * 10e-6)  # 10 us per call -> 200 calls per frame
    assert len(planner.take(records(50, calls=50), 0)) == 4  # 4 chunks of 50 calls
    assert len(planner.take(records(5, calls=2500), 0)) == 1  # a long chunk travels alone
