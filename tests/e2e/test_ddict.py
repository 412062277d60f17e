"""DDict end to end: real manager ranks, real clients in spawned workers."""
import json
import os

from helpers import copy_script, run_mpigroup, wait_no_processes


def test_ddict_api_end_to_end(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_api.py"), timeout=300, tag="ddict-api")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("MISSING 'nope'", "DEL-MISSING", "POPITEM-EMPTY", "GET-MANY-MISSING", "FULL True",
                 "FETCH-ADD 600 3", "WAIT-FOR True", "WAIT-TIMEOUT", "ATTACH-BAD not a serialized DDict",
                 "BAD-MANAGER", "NO-ROLLBACK True", "BAD-KEY", "BAD-VALUE True",
                 "STATS [(0, True, True), (1, True, True)]", "DONE"):
        assert line in out, (line, out, res.stderr)
    assert out.count("BAD-ARG") == 5, out
    assert "POLICY 2 [True, True] [True, True]" in out and "BAD-POLICY" in out, out
    assert out.count("USE-AFTER-DESTROY True") == 2, out
    assert wait_no_processes("ddict-api") == []


def test_four_writers_four_readers_50k_keys_each_checksummed(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_stress.py"), timeout=900, tag="ddict-stress")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ENTRIES 200000 CHECKSUM True" in res.stdout, res.stdout + res.stderr
    assert "READERS True" in res.stdout
    assert wait_no_processes("ddict-stress") == []


def test_persist_survives_a_killed_job_and_restores_elsewhere(tmp_path):
    path = str(tmp_path / "saved")
    first = run_mpigroup(copy_script(tmp_path, "ddict_persist.py"), path, timeout=180, tag="ddict-kill")
    assert "PERSISTED 2" in first.stdout, first.stdout + first.stderr
    assert first.returncode != 0  # it was killed
    assert wait_no_processes("ddict-kill", timeout=30) == []
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["managers"] == 2 and sum(s["entries"] for s in manifest["shards"]) == 2001
    second = run_mpigroup(copy_script(tmp_path, "ddict_restore.py"), path, timeout=180, tag="ddict-restore")
    assert second.returncode == 0, second.stdout + second.stderr
    for line in ("RESTORED 2001 2", "RESTORE-FULL True", "RESTORE-MISSING True"):
        assert line in second.stdout, (line, second.stdout, second.stderr)
    assert wait_no_processes("ddict-restore") == []


def test_timeouts_and_a_dead_manager_are_reported_never_a_hang(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_failures.py"), timeout=180, tag="ddict-fail")
    assert res.returncode == 0, res.stdout + res.stderr
    for line in ("TIMEOUT True", "DEAD-READER True", "DEAD True True True", "DEAD-LEN", "DESTROYED"):
        assert line in res.stdout, (line, res.stdout, res.stderr)
    assert wait_no_processes("ddict-fail") == []


def test_example_pool_fills_and_main_reads_back(tmp_path):
    from helpers import REPO

    res = run_mpigroup(REPO / "examples" / "3_ddict.py", "--keys", "20000", "--workers", "2",
                       timeout=300, tag="ddict-example")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "main read 20000 keys back" in res.stdout and "all correct" in res.stdout, res.stdout
    assert "2 pool workers wrote" in res.stdout
    assert "keys held on this node" in res.stdout and ": 20000" in res.stdout
    assert wait_no_processes("ddict-example") == []
