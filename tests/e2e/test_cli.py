"""The `mpigroup` command end to end: run (for real and --dry-run), info, env."""
import os
import subprocess
import sys

from helpers import copy_script


MPIGROUP = [sys.executable, "-m", "mpigroup.launcher.cli"]


def cli(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-c", "import sys; from mpigroup.launcher.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})), cwd=cwd)


def test_run_executes_script_with_allocation_and_args(tmp_path):
    script = copy_script(tmp_path, "cli_group_prints_args.py")
    proc = cli("run", "--label-output", str(script), "--flag", "value", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ARGS ['--flag', 'value'] WORLD 1 NODES 1" in proc.stdout
    assert proc.stdout.count("member says hi") == 2
    assert "warning" not in proc.stderr  # fault-isolation settings were applied


def test_run_propagates_failure_exit_code(tmp_path):
    script = copy_script(tmp_path, "exit_code_3.py")
    proc = cli("run", str(script), cwd=tmp_path)
    assert proc.returncode == 3


def test_dry_run_inside_slurm_uses_the_allocation(tmp_path):
    script = copy_script(tmp_path, "print_x.py")
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "nid[001-004,007]", "SLURM_JOB_CPUS_PER_NODE": "64(x5)"}
    proc = cli("run", "--dry-run", str(script), env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert " -n 5 " in line and "nid001:64,nid002:64,nid003:64,nid004:64,nid007:64" in line
    assert "-m mpigroup" in line and str(script) in line


def test_dry_run_inside_pbs_reads_the_nodefile(tmp_path):
    nodefile = tmp_path / "nodes"
    nodefile.write_text("n1\nn1\nn2\nn2\n")
    script = copy_script(tmp_path, "print_x.py")
    proc = cli("run", "--dry-run", str(script), env={"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "7.pbs"},
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert " -n 2 " in proc.stdout and "n1:2,n2:2" in proc.stdout


def test_user_values_are_never_overridden(tmp_path):
    script = copy_script(tmp_path, "print_x.py")
    proc = cli("run", "--dry-run", str(script), env={"OMPI_MCA_btl": "self,tcp"}, cwd=tmp_path)
    assert proc.returncode == 0 and "mpiexec" in proc.stdout, proc.stderr
    assert "OMPI_MCA_btl=" not in proc.stdout  # already set by the user: not added
    proc = cli("env", env={"OMPI_MCA_btl": "self,tcp"})
    assert proc.returncode == 0 and "OMPI_MCA_btl=" not in proc.stdout


def test_info_reports_node_and_mpi():
    proc = cli("info")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"this node: {os.uname().nodename}" in out
    assert "MPI: Open MPI" in out and "thread level: multiple" in out
    assert f"cpus: {len(os.sched_getaffinity(0))}" in out or "cpus:" in out


def test_bad_input_is_rejected_clearly(tmp_path):
    proc = cli("run", "missing.py", cwd=tmp_path)
    assert proc.returncode == 2 and "script not found" in proc.stderr
    proc = cli("run", "--telemetry-level", cwd=tmp_path)
    assert proc.returncode == 2
    proc = cli("frobnicate")
    assert proc.returncode == 2
