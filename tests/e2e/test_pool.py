"""Pool and PoolExecutor end to end: real spawned workers, RMA queues."""
from helpers import copy_script, run_mpigroup, wait_no_processes


def test_pool_api(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "pool_api.py"), timeout=300, tag="pool-api")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("REMOTE RemoteError True True", "UNPICKLABLE-ARG True", "UNPICKLABLE-FN True", "GET-TIMEOUT",
                 "CALLBACKS 16 ValueError", "MAXTASKS True", "CLOSED", "DEFAULT True"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-api") == []


def test_pool_dead_worker_is_reported_and_replaced(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "pool_dead_worker.py"), str(tmp_path / "started"), timeout=300, tag="pool-dead")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("LOST True True", "CAUSE True True True", "EXITED True", "STILL-WORKS [0, 1, 4, 9, 16, 25]", "TERMINATED-FAST True",
                 "AFTER-TERMINATE PoolTerminated"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-dead") == []


def test_pool_one_worker_per_gpu_policy(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "pool_gpu_policies.py"), timeout=300, env={"MPIGROUP_GPUS": "nvidia:0-3"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "NGPU 4" in res.stdout
    assert "WORKERS 4 ['0', '1', '2', '3']" in res.stdout, res.stdout


def test_pool_executor_and_mp_pool(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "pool_executor_and_mp.py"), timeout=300, tag="pool-exec")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("SUBMIT True", "MAP True", "RAISES KeyError", "CANCELLED True", "SHUTDOWN",
                 "MP-POOL mpigroup.pool.pool [0, 1, 4, 9, 16]"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-exec") == []


def test_pool_example_runs_with_and_without_gpus():
    from helpers import REPO

    script = REPO / "examples" / "0_pool.py"
    res = run_mpigroup(script, timeout=300, env={"MPIGROUP_GPUS": "none"})
    assert res.returncode == 0, res.stderr
    assert "no GPUs in this allocation" in res.stdout
    assert sum(int(line.rsplit(":", 1)[1].split()[0]) for line in res.stdout.splitlines()
               if " items" in line) == 200
    res = run_mpigroup(script, timeout=300, env={"MPIGROUP_GPUS": "nvidia:0-1"})
    assert res.returncode == 0, res.stderr
    gpus = {line.rsplit(" ", 1)[1] for line in res.stdout.splitlines() if "with GPU" in line}
    assert gpus == {"0", "1"}, res.stdout


def test_pool_worker_lost_mid_frame_fails_what_it_ran_and_reruns_the_rest(tmp_path):
    """A worker dies in a frame of several tasks: the task it ran fails, tasks it finished before lose their
    results (WorkerLostError), the tasks it never started run elsewhere and succeed."""
    res = run_mpigroup(copy_script(tmp_path, "pool_lost_frame.py"), timeout=300, tag="pool-frame")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("RUNNING [137]", "LOST-BEFORE-137 True OTHER []", "ALL-ACCOUNTED True",
                 "STILL-WORKS [0, 1, 4, 9, 16]"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-frame") == []
