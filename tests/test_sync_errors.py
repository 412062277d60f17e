"""Shared-object failures are clear errors: bad settings (SettingError naming the variable), dead service threads."""
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


SERVICE_FAILURE = """
import time
import mpigroup
from mpigroup.errors import SharedObjectError
from mpigroup.sync import head_service, universe

def boom(self):
    raise RuntimeError("boom in the step thread")

head_service.UniverseHead._serve = boom
q = mpigroup.Queue()  # the head joins the universe: its step thread starts, and dies
time.sleep(0.5)
try:
    universe.head_service().request_join([12345])
except SharedObjectError as exc:
    print("JOIN-REFUSED", "boom in the step thread" in str(exc))

uni = universe.current()
uni.failure = RuntimeError("service gone")  # what a member's dead service thread leaves behind
uni.left.set()
try:
    q.put(1)
except SharedObjectError as exc:
    print("OPERATION-REFUSED", "service gone" in str(exc))
"""


def test_a_dead_service_thread_is_logged_and_later_requests_raise(tmp_path):
    res = run_mpigroup(write_script(tmp_path, SERVICE_FAILURE), timeout=120)
    assert "JOIN-REFUSED True" in res.stdout, res.stdout + res.stderr
    assert "OPERATION-REFUSED True" in res.stdout, res.stdout + res.stderr
    assert "step thread stopped" in res.stderr and "RuntimeError: boom in the step thread" in res.stderr, res.stderr
