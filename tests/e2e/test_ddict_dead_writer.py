"""Issue 15, item 2: a DDict client killed mid-put loses only that put, never the shard."""
from helpers import copy_script, run_mpigroup, wait_no_processes


def test_a_client_killed_while_streaming_a_put_loses_only_that_put(tmp_path):
    res = run_mpigroup(copy_script(tmp_path, "ddict_dead_writer.py"), timeout=600, tag="ddict-dead-writer",
                       env={"MPIGROUP_DDICT_CHANNEL_BYTES": str(1 << 20)})
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "VICTIM-KILLED True" in out and "VICTIM-PUT-FINISHED" not in out, out + res.stderr
    for line in ("HEAD-READ (42, 50331648, b'" + "x" * 100 + "', 1)", "WORKER-EXIT 0", "WORKER-OK",
                 "VICTIM-ABSENT True", "ERRORS []",
                 "DROPPED True False", "RING-AFTER complete after None", "DONE"):
        assert line in out, (line, out, res.stderr)
    assert ("KEYS ['before', 'from-waiter', 'from-worker', 'head-big', 'head-small', 'small-from-worker']"
            in out), out
    assert wait_no_processes("ddict-dead-writer") == []
