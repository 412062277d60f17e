"""A stopped manager (timeout), a client that dies before its reply, a killed manager.

Run by tests/e2e/test_ddict.py.
"""
import os, signal, time
from mpigroup import DDict, DDictManagerError, DDictTimeoutError

d = DDict(managers_per_node=2, total_mem=16 << 20, timeout=3)
keys = {d.which_manager(f"k{i}"): f"k{i}" for i in range(50)}
for k in keys.values():
    d[k] = 1
pids = [s["pid"] for s in d.stats]

os.kill(pids[0], signal.SIGSTOP)           # a manager that does not answer
t = time.monotonic()
try:
    d[keys[0]]
except DDictTimeoutError as exc:
    print("TIMEOUT", round(time.monotonic() - t) <= 10, exc)
os.kill(pids[0], signal.SIGCONT)
assert d[keys[0]] == 1                       # and it recovers

# a client that dies before reading a reply larger than its reply ring
import numpy as np
from mpigroup import Process
from mpigroup.ddict import ops
from mpigroup.ddict.keys import encode_key
d.put_many({keys[0]: np.zeros(6 << 20, np.uint8)}, timeout=60)  # the reply ring is 4 MiB

def ask_and_die(h, key):
    h._send(h.which_manager(key), ops.Op.GET, ([encode_key(key)],))
    os._exit(0)

p = Process(ask_and_die, args=(d, keys[0]))
p.start(); p.join(30)
t = time.monotonic()
assert d.get_many([keys[0]], timeout=30)[0].nbytes == 6 << 20
print("DEAD-READER", round(time.monotonic() - t, 1) < 10)
d[keys[0]] = 1

os.kill(pids[1], signal.SIGKILL)           # a manager that dies
t = time.monotonic()
try:
    d[keys[1]] = 2
except DDictManagerError as exc:
    print("DEAD", round(time.monotonic() - t) <= 10, "exited" in str(exc), "manager 1" in str(exc))
try:
    len(d)
except DDictManagerError:
    print("DEAD-LEN")
assert d[keys[0]] == 1                       # the live shard still answers
d.destroy()
print("DESTROYED")
