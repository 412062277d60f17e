"""Bad shared-object settings fail with a SettingError naming the variable, not deep inside MPI."""
import pytest

from helpers import run_mpigroup, write_script

SCRIPT = """
from mpigroup import Queue
q = Queue()
q.put(1)
print("GOT", q.get(timeout=30))
"""


@pytest.mark.parametrize("name, value", [("MPIGROUP_QUEUE_BYTES", "abc"),
                                         ("MPIGROUP_ARENA_BYTES", "99999999999999")])
def test_a_bad_setting_is_a_setting_error_naming_the_variable(tmp_path, name, value):
    res = run_mpigroup(write_script(tmp_path, SCRIPT), env={name: value}, timeout=120)
    assert res.returncode != 0, res.stdout
    assert "SettingError" in res.stderr and name in res.stderr, res.stderr
    assert "MPI_ERR" not in res.stderr, res.stderr
    assert "GOT" not in res.stdout


def test_good_settings_are_used(tmp_path):
    res = run_mpigroup(write_script(tmp_path, SCRIPT), env={"MPIGROUP_QUEUE_BYTES": "64k",
                                                            "MPIGROUP_ARENA_BYTES": "64M",
                                                            "MPIGROUP_SPIN_US": "0", "MPIGROUP_SPIN_YIELD": "0"})
    assert res.returncode == 0, res.stderr
    assert "GOT 1" in res.stdout
