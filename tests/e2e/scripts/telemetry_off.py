"""Telemetry calls at level 0, in the head and in pool workers: nothing is loaded or checked.

Run by tests/e2e/test_telemetry.py.
"""
import sys
from mpigroup import Telemetry, Pool

def work(i):
    Telemetry().add_data("x", float(i))
    return sys.modules.get("mpigroup.telemetry.service") is None

t = Telemetry()
t.add_data("x", 1.0)
t.add_data("x", "not even a number")      # nothing is checked when telemetry is off
with Pool(1) as pool:
    print("WORKERS-LIGHT", all(pool.map(work, range(3))))
print("HEAD-LIGHT", "mpigroup.telemetry.service" not in sys.modules, t.level)
