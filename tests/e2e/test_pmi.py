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

from helpers import REPO, copy_script, run_mpigroup


def mpicc() -> str:
    candidate = os.path.join(sys.prefix, "bin", "mpicc")
    path = candidate if os.path.exists(candidate) else shutil.which("mpicc")
    assert path, "mpicc not found: install the test extras (pip install -e '.[test]')"
    return path


def test_mpi_executable_allreduce_env_and_affinity(tmp_path):
    exe = tmp_path / "mpi_hello"
    subprocess.run([mpicc(), "-O2", "-o", str(exe), str(REPO / "examples" / "mpi_hello.c")], check=True)
    script = copy_script(tmp_path, "pmi_mpi_hello.py")
    proc = run_mpigroup(script, str(exe), str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "STATUS [0, 0, 0, 0]" in proc.stdout
    lines = {i: (tmp_path / f"rank{i}.txt").read_text() for i in range(4)}
    assert "allreduce sum=10 expected=10" in lines[0]
    for i in range(4):
        assert f"rank {i} of 4" in lines[i]
        assert f"cpus={i % 2} var=value{i}" in lines[i]


def test_python_target_in_pmi_mode_sees_the_group_world(tmp_path):
    script = copy_script(tmp_path, "pmi_python_world.py")
    proc = run_mpigroup(script, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "STATUS [0, 0, 0]" in proc.stdout
    assert {(tmp_path / f"py{r}").read_text() for r in range(3)} == {"3 3"}


def test_failing_rank_is_reported(tmp_path):
    script = copy_script(tmp_path, "pmi_failing_rank.py")
    proc = run_mpigroup(script)
    assert proc.returncode == 0, proc.stderr
    assert "REPORTED" in proc.stdout and "exited with 7" in proc.stdout


def test_one_failed_rank_ends_the_whole_world(tmp_path):
    """Survivors would wait in MPI_Finalize for the failed peer forever; the world is ended instead."""
    script = copy_script(tmp_path, "pmi_one_rank_exits.py")
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
    script = copy_script(tmp_path, "pmi_secret_env.py")
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
