"""Shared-object failures are clear errors: bad settings (SettingError naming the variable), dead service threads."""
import pytest

from helpers import copy_script, run_mpigroup


@pytest.mark.parametrize("name, value", [("MPIGROUP_QUEUE_BYTES", "abc"),
                                         ("MPIGROUP_ARENA_BYTES", "99999999999999")])
def test_a_bad_setting_is_a_setting_error_naming_the_variable(tmp_path, name, value):
    res = run_mpigroup(copy_script(tmp_path, "sync_queue_one_item.py"), env={name: value}, timeout=120)
    assert res.returncode != 0, res.stdout
    assert "SettingError" in res.stderr and name in res.stderr, res.stderr
    assert "MPI_ERR" not in res.stderr, res.stderr
    assert "GOT" not in res.stdout


def test_good_settings_are_used(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_queue_one_item.py"), env={"MPIGROUP_QUEUE_BYTES": "64k",
                                                            "MPIGROUP_ARENA_BYTES": "64M",
                                                            "MPIGROUP_SPIN_US": "0", "MPIGROUP_SPIN_YIELD": "0"})
    assert res.returncode == 0, res.stderr
    assert "GOT 1" in res.stdout




def test_a_dead_service_thread_is_logged_and_later_requests_raise(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "sync_dead_service_threads.py"), timeout=120)
    assert "JOIN-REFUSED True" in res.stdout, res.stdout + res.stderr
    assert "OPERATION-REFUSED True" in res.stdout, res.stdout + res.stderr
    assert "step thread stopped" in res.stderr and "RuntimeError: boom in the step thread" in res.stderr, res.stderr
