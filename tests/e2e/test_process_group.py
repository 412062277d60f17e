"""ProcessGroup, Process and ProcessTemplate end to end under `python -m mpigroup`."""
import json
import os

import pytest

from helpers import REPO, copy_script, run_mpigroup, wait_no_processes


def results(proc):
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out.update(json.loads(line[7:]))
    return out


def test_group_runs_members_and_reports_exit_codes(tmp_path):
    script = copy_script(tmp_path, "pg_members_and_exit_codes.py")
    res = results(run_mpigroup(script, str(tmp_path)))
    codes = [code for _, code in res["status"]]
    assert codes == [0, 0, 0, 0, 3]
    assert len(set(res["puids"])) == 5
    assert "exited with 3" in res["error"]
    assert res["nnodes"] == 1 and res["cpus"] == len(os.sched_getaffinity(0)) or res["cpus"] >= 1
    assert res["node"][0] == os.uname().nodename
    assert (tmp_path / "m7").exists()


def test_remote_exception_carries_traceback_rank_and_host(tmp_path):
    script = copy_script(tmp_path, "pg_remote_exception.py")
    res = results(run_mpigroup(script))
    assert res["kind"] == "RemoteError" and res["exc_type"] == "ValueError"
    assert "bad input 42" in res["text"] and "in broken" in res["text"]
    assert res["host"] == os.uname().nodename and res["rank"] in (0, 1) and res["puid"] >= 1


def test_signals_and_crashes_give_negative_exit_codes(tmp_path):
    script = copy_script(tmp_path, "pg_signals_and_crashes.py")
    res = results(run_mpigroup(script))
    codes = [code for _, code in res["status"]]
    assert codes[0] == -9  # SIGKILL
    assert res["running_after_kill"] == [True, True]  # siblings survive a killed member
    assert codes[1:3] == [-2, -2]  # stop(): SIGINT first
    assert codes[3] == -11  # segfault
    assert codes[4] == 5  # os._exit without reporting
    assert res["error_state"] is True


def test_stop_escalates_to_sigkill_and_join_times_out(tmp_path):
    script = copy_script(tmp_path, "pg_stop_escalates.py")
    res = results(run_mpigroup(script))
    assert res["timeout"] is True
    assert [c for _, c in res["status"]] == [-9, -9]
    assert res["took"] >= 2.0  # waited through SIGINT and SIGTERM before SIGKILL


def test_restart_and_walltime(tmp_path):
    script = copy_script(tmp_path, "pg_restart_walltime.py")
    res = results(run_mpigroup(script))
    assert res["started"] > 2  # members were restarted
    assert res["expired"] is True and res["running"] is False  # walltime stopped the group, not join's timeout
    assert res["elapsed"] >= 3.0  # not before the walltime


def test_output_routing(tmp_path):
    script = copy_script(tmp_path, "pg_output_routing.py")
    proc = run_mpigroup(script, str(tmp_path))
    res = results(proc)
    assert res["out"] == "out pipe\n" and res["err"] == "err pipe\n"
    assert (tmp_path / "o.txt").read_text().splitlines() == ["out file", "err file"]
    assert "null" not in proc.stdout + proc.stderr
    labelled = [line for line in proc.stdout.splitlines() if line.endswith("out inherit")]
    assert labelled and labelled[0].startswith("[io ") and "@" in labelled[0]


def test_executable_targets_and_bad_paths(tmp_path):
    (tmp_path / "not_exec.sh").write_text("echo hi\n")
    script = copy_script(tmp_path, "pg_executable_targets.py")
    proc = run_mpigroup(script, str(tmp_path))
    res = results(proc)
    assert [c for _, c in res["status"]] == [4, 4]
    assert proc.stdout.count("from-exec") == 2
    assert res["errors"][0].startswith("FileNotFoundError") and "/no/such/program" in res["errors"][0]
    assert res["errors"][1].startswith("PermissionError") and "not_exec.sh" in res["errors"][1]
    assert "not found on PATH" in res["errors"][2]


def test_policies_place_and_bind_and_reject_before_spawning(tmp_path):
    cfg = str(REPO / "configs" / "local_2cpu.yaml")
    script = copy_script(tmp_path, "pg_policies.py")
    res = results(run_mpigroup(script, str(tmp_path), cfg))
    assert res["aff"] == [[0], [1], [1]]
    assert len(res["errors"]) == 3
    assert "no-such-host" in res["errors"][0] and "4096" in res["errors"][1] and "gpu" in res["errors"][2].lower()
    assert res["spawned"] == 3 + 1  # the three reports plus the script: nothing spawned for bad policies


def test_nested_group_from_a_worker_and_process_api(tmp_path):
    script = copy_script(tmp_path, "pg_nested_group_and_process.py")
    res = results(run_mpigroup(script, str(tmp_path)))
    assert res["code"] == 0 and res["alive"] is False and res["leaf"] is True
    assert res["q_code"] == 1 and "ZeroDivisionError" in res["q_error"]


@pytest.mark.parametrize("mode", ["module", "code"])


def test_module_and_code_entry_points(tmp_path, mode):
    copy_script(tmp_path, "module_prints_args.py", as_name="mymod.py")
    import subprocess, sys
    if mode == "module":
        cmd = [sys.executable, "-m", "mpigroup", "-m", "mymod", "a", "b"]
        expect = "module ran ['a', 'b']"
    else:
        cmd = [sys.executable, "-m", "mpigroup", "-c", "import sys; print('code ran', sys.argv)", "x"]
        expect = "code ran ['-c', 'x']"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout


def test_bad_command_lines_are_rejected(tmp_path):
    import subprocess, sys
    for args, needle in [([], "no program"), (["missing.py"], "script not found"), (["--bogus"], "unknown option"),
                         (["-m", "no_such_module_here"], "no module named 'no_such_module_here'")]:
        proc = subprocess.run([sys.executable, "-m", "mpigroup", *args], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode != 0 and needle in proc.stderr + proc.stdout


@pytest.mark.parametrize("np", [None, 1])


def test_output_of_every_group_reaches_the_terminal(tmp_path, np):
    """Open MPI's singleton forwards only the first spawned job's output; mpigroup relays the rest."""
    import shutil
    import subprocess
    import sys
    exe = tmp_path / "hello"
    mpicc = os.path.join(sys.prefix, "bin", "mpicc")
    subprocess.run([mpicc if os.path.exists(mpicc) else shutil.which("mpicc"), "-o", str(exe),
                    str(REPO / "examples" / "mpi_hello.c")], check=True)
    script = copy_script(tmp_path, "pg_output_of_every_group.py")
    proc = run_mpigroup(script, str(exe), np=np)
    assert proc.returncode == 0, proc.stderr
    for i in range(3):
        assert proc.stdout.count(f"python-group-{i}") == 2
        assert proc.stdout.count(f"exec-group-{i}") == 1
    assert "allreduce sum=3 expected=3" in proc.stdout


@pytest.mark.parametrize("vendor,var", [("nvidia", "CUDA_VISIBLE_DEVICES"), ("amd", "ROCR_VISIBLE_DEVICES"),
                                        ("intel", "ZE_AFFINITY_MASK")])


def test_gpu_policies_set_the_vendor_visibility_variable(tmp_path, vendor, var):
    """GPU placement end to end; MPIGROUP_GPUS declares the node's GPUs (no GPU on CI machines)."""
    script = copy_script(tmp_path, "pg_gpu_visibility.py")
    res = results(run_mpigroup(script, str(tmp_path), var, env={"MPIGROUP_GPUS": f"{vendor}:0-2"}))
    assert res["seen"] == ["0", "1", "2"]
    assert res["node"] == [3, vendor]


def test_signals_right_after_start_are_not_lost(tmp_path):
    script = copy_script(tmp_path, "pg_signals_right_after_start.py")
    res = results(run_mpigroup(script))
    assert res["p"] == -15 and res["g"] == [-9, -9, -9]


def test_restart_group_stops_for_good(tmp_path):
    script = copy_script(tmp_path, "pg_restart_stops_for_good.py")
    res = results(run_mpigroup(script))
    assert res == {"running": False, "restarted": True, "unfinished": []}


def test_exit_codes_follow_multiprocessing(tmp_path):
    script = copy_script(tmp_path, "pg_exit_codes_like_multiprocessing.py")
    res = results(run_mpigroup(script))
    assert res["codes"] == [255, 0, 3, 0, 0]
    assert res["leftover"] == []  # a target's background child does not outlive it
    assert res["took"] < 10


def test_failing_rank_of_a_python_pmi_world_does_not_hang(tmp_path):
    script = copy_script(tmp_path, "pg_python_pmi_rank_fails.py")
    res = results(run_mpigroup(script))
    assert res["raised"] is True and res["took"] < 30
    assert "RuntimeError: rank 1 fails" in res["cause"] and "in rank_main" in res["cause"]


def test_stop_right_after_start_gives_sigint_codes_and_partial_lines_end(tmp_path):
    script = copy_script(tmp_path, "pg_stop_right_after_start.py")
    proc = run_mpigroup(script)
    res = results(proc)
    assert res["codes"] == [-2, -2, -2, -2]
    parts = [line for line in proc.stdout.splitlines() if line.endswith("part")]
    assert len(parts) == 2 and all(line.startswith("[lab ") and line.count("part") == 1 for line in parts)


@pytest.mark.parametrize("np", [None, 2])
def test_head_releases_finished_sets(tmp_path, np):
    """A finished set leaves Head.sets and its PMIx job data is dropped; status() still answers (issue 15)."""
    proc = run_mpigroup(copy_script(tmp_path, "head_releases_finished_sets.py"), np=np, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "SETS 0" in proc.stdout, proc.stdout
    assert "FORGOTTEN 3 3 True" in proc.stdout, proc.stdout
    assert "EXITCODES [0, 0, 0]" in proc.stdout, proc.stdout
