"""One-node runs keep MPI's TCP transport to loopback (issue 15, "Exposure")."""
import pytest

from helpers import copy_script, run_mpigroup, wait_no_processes


@pytest.mark.parametrize("np", [None, 2])
def test_one_node_run_uses_loopback_for_mpi_tcp(tmp_path, np):
    """A singleton and an `mpiexec -n 2` run on one node: the head and every worker run with
    btl_tcp_if_include=127.0.0.1/8 (peers publish and accept loopback addresses only) and still
    spawn and pass messages."""
    tag = f"exposure-{np}-{tmp_path.name}"
    proc = run_mpigroup(copy_script(tmp_path, "loopback_only.py"), np=np, tag=tag, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "HEAD 127.0.0.1/8" in proc.stdout, proc.stdout
    assert "WORKERS ['127.0.0.1/8', '127.0.0.1/8']" in proc.stdout, proc.stdout
    assert "EXITCODES [0, 0]" in proc.stdout, proc.stdout
    assert wait_no_processes(tag) == []


def test_a_user_choice_of_interfaces_wins(tmp_path):
    proc = run_mpigroup(copy_script(tmp_path, "loopback_only.py"), timeout=180,
                        env={"OMPI_MCA_btl_tcp_if_exclude": "127.0.0.1/8,sppp"})
    assert proc.returncode == 0, proc.stderr
    assert "HEAD None" in proc.stdout and "WORKERS ['None', 'None']" in proc.stdout, proc.stdout
