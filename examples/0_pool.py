"""Pool across nodes, then one worker per GPU: the port of Dragon's pool example.

Run:

    python -m mpigroup examples/0_pool.py             # laptop (singleton)
    mpigroup run examples/0_pool.py                   # inside Slurm/PBS: workers on every node

1. A plain Pool with one worker per usable CPU of the whole allocation
   (not of this node) maps a function over many items; each result says
   which host and process computed it.
2. A policy-bound Pool with one worker per GPU (System().gpu_policies(),
   processes_per_policy=1): every task reports its host and the GPU its
   worker sees. Without GPUs the example says so and skips this part.
"""
import os
import socket
import time
from collections import Counter

import mpigroup
from mpigroup import Pool, System


def where(i: int) -> tuple:
    time.sleep(0.01)
    return i * i, socket.gethostname(), os.getpid()


def which_gpu(i: int) -> tuple:
    time.sleep(0.05)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or os.environ.get("ROCR_VISIBLE_DEVICES") \
        or os.environ.get("ZE_AFFINITY_MASK")
    return i, socket.gethostname(), gpu


if __name__ == "__main__":
    system = System()
    nworkers = mpigroup.cpu_count()
    print(f"{system.nnodes} node(s), {nworkers} usable CPUs in the allocation")
    with Pool() as pool:  # one worker per usable CPU of the allocation
        results = pool.map(where, range(200))
    assert [r[0] for r in results] == [i * i for i in range(200)]
    per_worker = Counter((host, pid) for _, host, pid in results)
    for (host, pid), n in sorted(per_worker.items()):
        print(f"  {host} pid {pid}: {n} items")

    policies = system.gpu_policies()
    if not policies:
        print("no GPUs in this allocation: skipping the one-worker-per-GPU pool")
    else:
        with Pool(policy=policies, processes_per_policy=1) as pool:
            for i, host, gpu in pool.map(which_gpu, range(4 * len(policies)), chunksize=1):
                print(f"  task {i:2d} ran on {host} with GPU {gpu}")
