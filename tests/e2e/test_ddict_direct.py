"""DDict single-copy gets on one node: a large value is copied straight out of
the manager's memory (cross-memory attach), validated by the manager's epoch."""
from helpers import copy_script, run_mpigroup, wait_no_processes


def _counts(stdout: str, tag: str) -> list[str]:
    return next(line for line in stdout.splitlines() if line.startswith(tag)).split()[1:]


def test_large_gets_copy_from_the_manager_and_never_tear(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_direct_gets.py"), timeout=300, tag="ddict-direct")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "MISSING 'absent'" in res.stdout
    reads, retries = map(int, _counts(res.stdout, "UNCHANGED"))
    assert reads == 20 and retries == 0, res.stdout  # every get of the unchanged value was a direct copy
    concurrent = _counts(res.stdout, "CONCURRENT")
    assert concurrent[:2] == ["True", "True"], res.stdout  # several versions seen, none torn
    assert int(concurrent[2]) > 20, res.stdout
    assert "DEAD True" in res.stdout, res.stdout + res.stderr
    assert "RuntimeWarning" not in res.stderr, res.stderr
    assert wait_no_processes("ddict-direct") == []


def test_direct_gets_can_be_turned_off(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_direct_gets.py"), timeout=300, tag="ddict-nodirect",
                       env={"MPIGROUP_DDICT_CMA": "0"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert _counts(res.stdout, "UNCHANGED") == ["0", "0"], res.stdout
    assert _counts(res.stdout, "CONCURRENT")[:3] == ["True", "True", "0"], res.stdout
    assert "DEAD True" in res.stdout, res.stdout + res.stderr
    assert wait_no_processes("ddict-nodirect") == []
