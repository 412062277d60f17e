"""Restores what ddict_persist.py saved in argv[1], with another shard count.

Run by tests/e2e/test_ddict.py.
"""
import sys
import numpy as np
from mpigroup import DDict, DDictError, DDictFullError

path = sys.argv[1]
d = DDict(managers_per_node=1, restore_from=path, total_mem=64 << 20)  # another shard count: re-sharded
assert len(d) == 2001, len(d)
assert all(v == int(k[1:]) ** 2 for k, v in d.items() if k != "arr")
assert np.array_equal(d["arr"], np.arange(100_000))
assert "after" not in d and d["k5"] == 25
print("RESTORED", len(d), d.checkpoint_id)
d.destroy()
try:
    DDict(restore_from=path, total_mem=1000)
except DDictFullError as exc:
    print("RESTORE-FULL", "restoring" in str(exc))
try:
    DDict(restore_from=path + "-nowhere")
except DDictError as exc:
    print("RESTORE-MISSING", "manifest.json" in str(exc))
