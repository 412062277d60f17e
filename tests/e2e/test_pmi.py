"""PMI pass-through: a compiled MPI program runs as one MPI_COMM_WORLD of a ProcessGroup.

The test compiles examples/mpi_hello.c with the MPI wheel's own `mpicc`
inside the test run (no prebuilt binary), then checks the Allreduce over 4
ranks and each rank's environment and CPU affinity.
"""
import os
import shutil
import subprocess
import sys
import time

from helpers import REPO, run_mpigroup, write_script


def mpicc() -> str:
    candidate = os.path.join(sys.prefix, "bin", "mpicc")
    path = candidate if os.path.exists(candidate) else shutil.which("mpicc")
    assert path, "mpicc not found: install the test extras (pip install -e '.[test]')"
    return path


def test_mpi_executable_allreduce_env_and_affinity(tmp_path):
    exe = tmp_path / "mpi_hello"
    subprocess.run([mpicc(), "-O2", "-o", str(exe), str(REPO / "examples" / "mpi_hello.c")], check=True)
    script = write_script(tmp_path, """
import sys
import time
from mpigroup import ProcessGroup, ProcessTemplate, Policy
exe, out = sys.argv[1], sys.argv[2]
pg = ProcessGroup(pmi=True, name="hello")
for i in range(4):
    pg.add_process(1, ProcessTemplate(exe, env={"MPIGROUP_EXAMPLE_VAR": f"value{i}"},
                                      policy=Policy(cpu_affinity=[i % 2]), stdout=f"{out}/rank{i}.txt"))
pg.start()
pg.join(timeout=120)
print("STATUS", [code for _, code in pg.exit_status], flush=True)
""")
    proc = run_mpigroup(script, str(exe), str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "STATUS [0, 0, 0, 0]" in proc.stdout
    lines = {i: (tmp_path / f"rank{i}.txt").read_text() for i in range(4)}
    assert "allreduce sum=10 expected=10" in lines[0]
    for i in range(4):
        assert f"rank {i} of 4" in lines[i]
        assert f"cpus={i % 2} var=value{i}" in lines[i]


def test_python_target_in_pmi_mode_sees_the_group_world(tmp_path):
    script = write_script(tmp_path, """
import sys
import time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main(out):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    total = comm.allreduce(comm.Get_rank())
    open(f"{out}/py{comm.Get_rank()}", "w").write(f"{comm.Get_size()} {total}")
pg = ProcessGroup(pmi=True, name="pyworld")
pg.add_process(3, ProcessTemplate(rank_main, args=(sys.argv[1],)))
pg.start(); pg.join(timeout=120)
print("STATUS", [c for _, c in pg.exit_status])
""")
    proc = run_mpigroup(script, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "STATUS [0, 0, 0]" in proc.stdout
    assert {(tmp_path / f"py{r}").read_text() for r in range(3)} == {"3 3"}


def test_failing_rank_is_reported(tmp_path):
    script = write_script(tmp_path, """
from mpigroup import ProcessGroup, ProcessTemplate, ProcessGroupError
pg = ProcessGroup(pmi=True, name="failing")
pg.add_process(2, ProcessTemplate("/bin/sh", args=["-c", "exit 7"]))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    print("REPORTED", exc)
""")
    proc = run_mpigroup(script)
    assert proc.returncode == 0, proc.stderr
    assert "REPORTED" in proc.stdout and "exited with 7" in proc.stdout


def test_one_failed_rank_ends_the_whole_world(tmp_path):
    """Survivors would wait in MPI_Finalize for the failed peer forever; the world is ended instead."""
    script = write_script(tmp_path, """
import sys, time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main():
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        sys.exit(3)
g = ProcessGroup(pmi=True, name="partial", ignore_error_on_exit=True)
g.add_process(2, ProcessTemplate(rank_main))
g.start()
t = time.time()
g.join(timeout=60)
print("STATUS", [c for _, c in g.exit_status], "TOOK", round(time.time() - t, 1))
""")
    proc = run_mpigroup(script)
    assert proc.returncode == 0, proc.stderr
    line = [l for l in proc.stdout.splitlines() if l.startswith("STATUS")][0]
    codes = eval(line.split("STATUS", 1)[1].split("TOOK")[0])
    assert codes[1] == 3 and codes[0] in (0, -9)
    assert float(line.split("TOOK")[1]) < 30


def test_no_secret_on_any_command_line(tmp_path):
    """A PMI group's environment values and Python target never appear in /proc/*/cmdline (issue 15)."""
    import base64
    import binascii
    import uuid

    from helpers import processes_with_tag

    secret = "hunter2-" + uuid.uuid4().hex
    script = write_script(tmp_path, """
import os, sys, time
from mpigroup import ProcessGroup, ProcessTemplate
def rank_main(flag_dir):
    from mpi4py import MPI
    assert os.environ["API_TOKEN"].startswith("hunter2-")
    open(f"{flag_dir}/up{MPI.COMM_WORLD.Get_rank()}", "w").close()
    time.sleep(3)
pg = ProcessGroup(pmi=True, name="secretive")
pg.add_process(3, ProcessTemplate(rank_main, args=(sys.argv[1],), env={"API_TOKEN": os.environ["TEST_SECRET"]}))
pg.start(); pg.join(timeout=120)
print("STATUS", [c for _, c in pg.exit_status])
""")
    tag = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "mpigroup", str(script), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=dict(os.environ, MPIGROUP_TEST_TAG=tag, TEST_SECRET=secret))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"up{r}").exists() for r in range(3)) and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = []
    for p in processes_with_tag(tag):  # every process of this run, workers and shims included
        try:
            seen += p.cmdline()
        except Exception:
            continue
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "STATUS [0, 0, 0]" in out
    assert len(seen) > 5
    decoded = []
    for word in seen:
        try:
            decoded.append(base64.b64decode(word, validate=True).decode("latin-1"))
        except (binascii.Error, ValueError):
            pass
    assert not [w for w in seen + decoded if secret in w or "rank_main" in w], seen
