"""A failing service thread is logged with its traceback and its object raises (never a silent hang)."""
from helpers import copy_script, run_mpigroup


def test_pool_pump_failure_breaks_the_pool(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "service_pool_pump_fails.py"), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PENDING True" in res.stdout and res.stdout.count("LATER True") == 2 and "DONE" in res.stdout, res.stdout
    assert "mpigroup: Pool: the pool's pump thread failed" in res.stderr
    assert "OSError: injected pump failure" in res.stderr  # with its traceback


def test_pool_monitor_failure_breaks_the_pool(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "service_pool_monitor_fails.py"), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BROKEN True" in res.stdout, res.stdout + res.stderr
    assert "monitor thread failed" in res.stderr and "RuntimeError: injected monitor failure" in res.stderr


def test_group_watch_failure_raises_from_join(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "service_group_watch_fails.py"), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "GROUP True OSError" in res.stdout, res.stdout + res.stderr
    assert "restart/walltime thread failed" in res.stderr and "OSError: injected restart failure" in res.stderr


def test_unpicklable_head_error_arrives_with_its_traceback(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "service_unpicklable_head_error.py"), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "REMOTE Unpicklable cannot travel True True" in res.stdout, res.stdout + res.stderr
    assert "EXIT 0" in res.stdout
