"""Fills a DDict, persists it to argv[1], changes it afterwards and SIGKILLs its own job.

Run by tests/e2e/test_ddict.py.
"""
import os, signal, sys
import numpy as np
from mpigroup import DDict

path = sys.argv[1]
d = DDict(managers_per_node=2, total_mem=64 << 20, name="ckpt")
d.put_many({f"k{i}": i * i for i in range(2000)})
d["arr"] = np.arange(100_000)
d.checkpoint(); d.checkpoint()
d.persist(path)
d["after"] = "not persisted"
d["k5"] = "changed after persist"
print("PERSISTED", d.checkpoint_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the job dies without any cleanup
