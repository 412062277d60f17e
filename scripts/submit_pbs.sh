#!/bin/bash
# PBS Pro / OpenPBS batch template for mpigroup. Submit with:  qsub scripts/submit_pbs.sh
#
# One initial rank per node (head + node agents); the head spawns the
# workers. `mpigroup run` reads PBS_NODEFILE (one line per slot) to build
# the mpiexec host list, so worker counts follow the allocation.
#
#PBS -N mpigroup-demo
#PBS -l select=2:ncpus=64:mpiprocs=1     # 2 nodes, 1 initial rank each
#PBS -l walltime=00:15:00
#PBS -l place=scatter:exclusive
#PBS -j oe
# #PBS -l select=2:ncpus=64:ngpus=4:mpiprocs=1   # GPU nodes (see configs/polaris_4gpu.yaml)
# #PBS -l filesystems=home:eagle                 # site-specific (e.g. Polaris)

set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"

source "${MPIGROUP_VENV:-.venv}/bin/activate"

mpigroup info
mpigroup run --dry-run examples/1_process_group.py
mpigroup run --label-output examples/1_process_group.py
NNODES=$(sort -u "$PBS_NODEFILE" | wc -l)
mpigroup run examples/2_mpi_process_group.py --nranks "$((NNODES * 4))"

# Telemetry (needs the telemetry and examples extras). The head serves
# Prometheus /metrics and the OpenTSDB API on 127.0.0.1:8000 of the first node
# (tunnel it: ssh -L 8000:127.0.0.1:8000 <first node>); the samples stay in
# ./mpigroup-telemetry/<run>/ afterwards: mpigroup telemetry plot latest -o run.png
mpigroup run --telemetry-level 3 examples/telemetry_full.py --epochs 2
mpigroup run --telemetry-level 3 examples/llm_inference/llm_inference.py
