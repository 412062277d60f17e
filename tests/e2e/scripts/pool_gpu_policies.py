"""A Pool with one worker per GPU policy; prints which GPUs the workers saw.

Run by tests/e2e/test_pool.py.
"""
import os
from mpigroup import Pool, System

def where(_):
    import socket, time
    time.sleep(0.1)  # long enough that every worker takes tasks
    return socket.gethostname(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()

policies = System().gpu_policies()
print("NGPU", len(policies))
with Pool(policy=policies, processes_per_policy=1) as pool:
    seen = {}
    for host, gpu, pid in pool.map(where, range(40), chunksize=1):
        seen.setdefault(pid, set()).add(gpu)
    print("WORKERS", len(seen), sorted(g for gpus in seen.values() for g in gpus))
