"""ProcessGroup, Process and ProcessTemplate end to end under `python -m mpigroup`."""
import json
import os

import pytest

from helpers import run_mpigroup, wait_no_processes, write_script

COMMON = """
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)
"""


def results(proc):
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out.update(json.loads(line[7:]))
    return out


def test_group_runs_members_and_reports_exit_codes(tmp_path):
    script = write_script(tmp_path, COMMON + """
def member(i, path):
    with open(f"{path}/m{i}", "w") as fh:
        fh.write(f"{os.getpid()} {os.environ['MPIGROUP_PUID']}")
pg = ProcessGroup(name="basic")
pg.add_process(4, ProcessTemplate(member, args=(7, sys.argv[1])))
pg.add_process(1, ProcessTemplate(lambda: sys.exit(3)))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    emit(error=str(exc))
pg.join(timeout=60)
emit(status=pg.exit_status, puids=pg.puids, nnodes=System().nnodes, cpus=cpu_count(),
     node=[Node(0).hostname, Node(0).num_cpus, Node(socket.gethostname()).num_gpus])
""")
    res = results(run_mpigroup(script, str(tmp_path)))
    codes = [code for _, code in res["status"]]
    assert codes == [0, 0, 0, 0, 3]
    assert len(set(res["puids"])) == 5
    assert "exited with 3" in res["error"]
    assert res["nnodes"] == 1 and res["cpus"] == len(os.sched_getaffinity(0)) or res["cpus"] >= 1
    assert res["node"][0] == os.uname().nodename
    assert (tmp_path / "m7").exists()


def test_remote_exception_carries_traceback_rank_and_host(tmp_path):
    script = write_script(tmp_path, COMMON + """
def broken(x):
    raise ValueError(f"bad input {x}")
pg = ProcessGroup(name="err")
pg.add_process(2, ProcessTemplate(broken, args=(42,)))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    cause = exc.__cause__
    emit(kind=type(cause).__name__, text=str(cause), rank=cause.rank, host=cause.host, puid=cause.puid,
         exc_type=cause.exc_type)
""")
    res = results(run_mpigroup(script))
    assert res["kind"] == "RemoteError" and res["exc_type"] == "ValueError"
    assert "bad input 42" in res["text"] and "in broken" in res["text"]
    assert res["host"] == os.uname().nodename and res["rank"] in (0, 1) and res["puid"] >= 1


def test_signals_and_crashes_give_negative_exit_codes(tmp_path):
    script = write_script(tmp_path, COMMON + """
def sleeper():
    time.sleep(60)
def segfault():
    import ctypes
    ctypes.string_at(0)
def hard_exit():
    os._exit(5)
pg = ProcessGroup(name="sig", ignore_error_on_exit=True)
pg.add_process(3, ProcessTemplate(sleeper))
pg.add_process(1, ProcessTemplate(segfault))
pg.add_process(1, ProcessTemplate(hard_exit))
pg.start()
deadline = time.time() + 30
while pg.pid(pg.puids[0]) is None and time.time() < deadline:
    time.sleep(0.05)
os.kill(pg.pid(pg.puids[0]), signal.SIGKILL)
time.sleep(1.0)
running_after_kill = [code is None for _, code in pg.exit_status][1:3]
pg.stop(patience=5)
emit(status=pg.exit_status, running_after_kill=running_after_kill, error_state=pg.in_error_state)
""")
    res = results(run_mpigroup(script))
    codes = [code for _, code in res["status"]]
    assert codes[0] == -9  # SIGKILL
    assert res["running_after_kill"] == [True, True]  # siblings survive a killed member
    assert codes[1:3] == [-2, -2]  # stop(): SIGINT first
    assert codes[3] == -11  # segfault
    assert codes[4] == 5  # os._exit without reporting
    assert res["error_state"] is True


def test_stop_escalates_to_sigkill_and_join_times_out(tmp_path):
    script = write_script(tmp_path, COMMON + """
def stubborn():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.1)
pg = ProcessGroup(name="stubborn")
pg.add_process(2, ProcessTemplate(stubborn))
pg.start()
try:
    pg.join(timeout=0.5)
    emit(timeout=False)
except TimeoutError:
    emit(timeout=True)
t = time.time()
pg.stop(patience=1.0)
emit(status=pg.exit_status, took=time.time() - t)
""")
    res = results(run_mpigroup(script))
    assert res["timeout"] is True
    assert [c for _, c in res["status"]] == [-9, -9]
    assert res["took"] >= 2.0  # waited through SIGINT and SIGTERM before SIGKILL


def test_restart_and_walltime(tmp_path):
    script = write_script(tmp_path, COMMON + """
def short():
    time.sleep(0.2)
pg = ProcessGroup(name="restart", restart=True, walltime=3.0)
pg.add_process(2, ProcessTemplate(short))
pg.start()
t = time.time()
pg.join(timeout=30)
emit(started=len(pg.exit_status), elapsed=time.time() - t, running=pg.is_running())
""")
    res = results(run_mpigroup(script))
    assert res["started"] > 2  # members were restarted
    assert 2.5 <= res["elapsed"] < 20  # walltime stopped the group
    assert res["running"] is False


def test_output_routing(tmp_path):
    script = write_script(tmp_path, COMMON + """
def talk(tag):
    print(f"out {tag}")
    print(f"err {tag}", file=sys.stderr)
pg = ProcessGroup(name="io", label_output=True)
pg.add_process(1, ProcessTemplate(talk, args=("pipe",), stdout=ProcessTemplate.PIPE, stderr=ProcessTemplate.PIPE))
pg.add_process(1, ProcessTemplate(talk, args=("file",), stdout=sys.argv[1] + "/o.txt", stderr=ProcessTemplate.STDOUT))
pg.add_process(1, ProcessTemplate(talk, args=("null",), stdout=ProcessTemplate.DEVNULL, stderr=ProcessTemplate.DEVNULL))
pg.add_process(1, ProcessTemplate(talk, args=("inherit",)))
pg.start(); pg.join(timeout=60)
p = pg.puids[0]
emit(out=pg.stdout(p), err=pg.stderr(p))
""")
    proc = run_mpigroup(script, str(tmp_path))
    res = results(proc)
    assert res["out"] == "out pipe\n" and res["err"] == "err pipe\n"
    assert (tmp_path / "o.txt").read_text().splitlines() == ["out file", "err file"]
    assert "null" not in proc.stdout + proc.stderr
    labelled = [line for line in proc.stdout.splitlines() if line.endswith("out inherit")]
    assert labelled and labelled[0].startswith("[io ") and "@" in labelled[0]


def test_executable_targets_and_bad_paths(tmp_path):
    (tmp_path / "not_exec.sh").write_text("echo hi\n")
    script = write_script(tmp_path, COMMON + """
pg = ProcessGroup(name="exe", ignore_error_on_exit=True)
pg.add_process(2, ProcessTemplate("/bin/sh", args=["-c", "echo from-exec; exit 4"]))
pg.start(); pg.join(timeout=60)
errors = []
for bad in ["/no/such/program", "./not_exec.sh", "no-such-program-on-path"]:
    try:
        ProcessTemplate(bad, cwd=sys.argv[1])
    except (FileNotFoundError, PermissionError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
emit(status=pg.exit_status, errors=errors)
""")
    proc = run_mpigroup(script, str(tmp_path))
    res = results(proc)
    assert [c for _, c in res["status"]] == [4, 4]
    assert proc.stdout.count("from-exec") == 2
    assert res["errors"][0].startswith("FileNotFoundError") and "/no/such/program" in res["errors"][0]
    assert res["errors"][1].startswith("PermissionError") and "not_exec.sh" in res["errors"][1]
    assert "not found on PATH" in res["errors"][2]


def test_policies_place_and_bind_and_reject_before_spawning(tmp_path):
    cfg = os.path.join(os.path.dirname(__file__), "..", "configs", "local_2cpu.yaml")
    script = write_script(tmp_path, COMMON + """
def report(path):
    with open(f"{path}/aff.{os.environ['MPIGROUP_PUID']}", "w") as fh:
        json.dump(sorted(os.sched_getaffinity(0)), fh)
pg = ProcessGroup(name="pol")
for pol in Policy.from_yaml(sys.argv[2]):
    pg.add_process(1, ProcessTemplate(report, args=(sys.argv[1],), policy=pol))
with Policy(cpu_affinity=[1]):
    pg.add_process(1, ProcessTemplate(report, args=(sys.argv[1],)))
pg.start(); pg.join(timeout=60)
aff = [json.load(open(f"{sys.argv[1]}/aff.{p}")) for p in pg.puids]
errors = []
for bad in [Policy(host_name="no-such-host"), Policy(cpu_affinity=[4096]), Policy(gpu_affinity=[0])]:
    g = ProcessGroup(name="bad", policy=bad)
    g.add_process(1, ProcessTemplate(report, args=(sys.argv[1],)))
    try:
        g.start()
    except PolicyError as exc:
        errors.append(str(exc))
emit(aff=aff, errors=errors, spawned=len(os.listdir(sys.argv[1])))
""")
    res = results(run_mpigroup(script, str(tmp_path), cfg))
    assert res["aff"] == [[0], [1], [1]]
    assert len(res["errors"]) == 3
    assert "no-such-host" in res["errors"][0] and "4096" in res["errors"][1] and "gpu" in res["errors"][2].lower()
    assert res["spawned"] == 3 + 1  # the three reports plus prog.py: nothing spawned for bad policies


def test_nested_group_from_a_worker_and_process_api(tmp_path):
    script = write_script(tmp_path, COMMON + """
def leaf(path, i):
    open(f"{path}/leaf{i}", "w").write(str(os.getppid()))
def parent(path):
    g = ProcessGroup(name="inner")
    g.add_process(2, ProcessTemplate(leaf, args=(path, 1)))
    g.start(); g.join(timeout=60)
    sys.exit(0 if all(c == 0 for _, c in g.exit_status) else 9)
p = Process(parent, args=(sys.argv[1],))
p.start(); p.join(60)
q = Process(lambda: 1 / 0); q.start(); q.join(60)
emit(code=p.exitcode, alive=p.is_alive(), leaf=os.path.exists(sys.argv[1] + "/leaf1"),
     q_code=q.exitcode, q_error=str(q.error))
""")
    res = results(run_mpigroup(script, str(tmp_path)))
    assert res["code"] == 0 and res["alive"] is False and res["leaf"] is True
    assert res["q_code"] == 1 and "ZeroDivisionError" in res["q_error"]


@pytest.mark.parametrize("mode", ["module", "code"])
def test_module_and_code_entry_points(tmp_path, mode):
    (tmp_path / "mymod.py").write_text("import sys\nprint('module ran', sys.argv[1:])\n")
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
                    os.path.join(os.path.dirname(__file__), "..", "examples", "mpi_hello.c")], check=True)
    script = write_script(tmp_path, COMMON + """
for i in range(3):
    g = ProcessGroup(name=f"g{i}")
    g.add_process(2, ProcessTemplate(print, args=(f"python-group-{i}",)))
    g.add_process(1, ProcessTemplate("/bin/echo", args=[f"exec-group-{i}"]))
    g.start(); g.join(timeout=60)
w = ProcessGroup(pmi=True, name="w")
w.add_process(2, ProcessTemplate(sys.argv[1]))
w.start(); w.join(timeout=60)
""")
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
    script = write_script(tmp_path, COMMON + """
def show(path, var):
    import os
    with open(f"{path}/gpu.{os.environ['MPIGROUP_PUID']}", "w") as fh:
        fh.write(os.environ.get(var, "unset"))
policies = System().gpu_policies()
pg = ProcessGroup(name="gpus")
for pol in policies:
    pg.add_process(1, ProcessTemplate(show, args=(sys.argv[1], sys.argv[2]), policy=pol))
pg.start(); pg.join(timeout=60)
emit(seen=[open(f"{sys.argv[1]}/gpu.{p}").read() for p in pg.puids], node=[Node(0).num_gpus, Node(0).gpu_vendor])
""")
    res = results(run_mpigroup(script, str(tmp_path), var, env={"MPIGROUP_GPUS": f"{vendor}:0-2"}))
    assert res["seen"] == ["0", "1", "2"]
    assert res["node"] == [3, vendor]


def test_signals_right_after_start_are_not_lost(tmp_path):
    script = write_script(tmp_path, COMMON + """
def sleeper():
    time.sleep(30)
p = Process(sleeper); p.start(); p.terminate(); p.join(20)
g = ProcessGroup(name="early", ignore_error_on_exit=True)
g.add_process(3, ProcessTemplate(sleeper)); g.start(); g.kill(); g.join(timeout=20)
emit(p=p.exitcode, g=[c for _, c in g.exit_status])
""")
    res = results(run_mpigroup(script))
    assert res["p"] == -15 and res["g"] == [-9, -9, -9]


def test_restart_group_stops_for_good(tmp_path):
    script = write_script(tmp_path, COMMON + """
def flappy():
    time.sleep(0.05)
g = ProcessGroup(name="flappy", restart=True)
g.add_process(3, ProcessTemplate(flappy))
g.start()
t = time.time()
while time.time() - t < 2:
    g.is_running(); g.exit_status; g.in_error_state   # racing the restart monitor must be safe
g.stop(patience=1); g.close()
time.sleep(1.0)
emit(running=g.is_running(), restarted=len(g.exit_status) > 3,
     unfinished=[p for p, c in g.exit_status if c is None])
""")
    res = results(run_mpigroup(script))
    assert res == {"running": False, "restarted": True, "unfinished": []}


def test_exit_codes_follow_multiprocessing(tmp_path):
    script = write_script(tmp_path, COMMON + """
import subprocess
def code(c):
    sys.exit(c)
def leaves_child():
    subprocess.Popen(["sleep", "47"])
g = ProcessGroup(name="codes", ignore_error_on_exit=True)
for c in (-1, 256, 3, None):
    g.add_process(1, ProcessTemplate(code, args=(c,)))
g.add_process(1, ProcessTemplate(leaves_child))
t = time.time(); g.start(); g.join(timeout=30)
time.sleep(0.5)
alive = subprocess.run(["pgrep", "-x", "sleep"], capture_output=True, text=True).stdout.split()
own = [p for p in alive if "47" in open(f"/proc/{p}/cmdline").read()] if alive else []
emit(codes=[c for _, c in g.exit_status], took=time.time() - t, leftover=own)
""")
    res = results(run_mpigroup(script))
    assert res["codes"] == [255, 0, 3, 0, 0]
    assert res["leftover"] == []  # a target's background child does not outlive it
    assert res["took"] < 10


def test_failing_rank_of_a_python_pmi_world_does_not_hang(tmp_path):
    script = write_script(tmp_path, COMMON + """
def rank_main():
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        raise RuntimeError("rank 1 fails")
    MPI.COMM_WORLD.Barrier()
g = ProcessGroup(pmi=True, name="pyfail")
g.add_process(3, ProcessTemplate(rank_main))
g.start()
t = time.time()
try:
    g.join(timeout=60)
    emit(raised=False)
except ProcessGroupError as exc:
    emit(raised=True, took=time.time() - t, text=str(exc), cause=str(exc.__cause__))
g.close()
""")
    res = results(run_mpigroup(script))
    assert res["raised"] is True and res["took"] < 30
    assert "RuntimeError: rank 1 fails" in res["cause"] and "in rank_main" in res["cause"]


def test_stop_right_after_start_gives_sigint_codes_and_partial_lines_end(tmp_path):
    script = write_script(tmp_path, COMMON + """
def sleeper():
    time.sleep(30)
def partial(tag):
    print(tag, end="")
g = ProcessGroup(name="early-stop")
g.add_process(4, ProcessTemplate(sleeper))
g.start(); g.stop(patience=5)
h = ProcessGroup(name="lab", label_output=True)
h.add_process(2, ProcessTemplate(partial, args=("part",)))
h.start(); h.join(timeout=30)
emit(codes=[c for _, c in g.exit_status])
""")
    proc = run_mpigroup(script)
    res = results(proc)
    assert res["codes"] == [-2, -2, -2, -2]
    parts = [line for line in proc.stdout.splitlines() if line.endswith("part")]
    assert len(parts) == 2 and all(line.startswith("[lab ") and line.count("part") == 1 for line in parts)
