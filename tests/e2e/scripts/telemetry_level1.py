"""Level 1: a kept metric, a dropped level-2 metric, bad input, use after shutdown.

Run by tests/e2e/test_telemetry.py.
"""
import time
from mpigroup import Telemetry
t = Telemetry()
t.add_data("kept", 1.0)
t.add_data("dropped", 2.0, telemetry_level=2)
for bad in (lambda: t.add_data("bad name", 1.0), lambda: t.add_data("x", "1"),
            lambda: t.add_data("x", 1.0, tags={"node": "n"}), lambda: t.add_data("x", 1.0, telemetry_level=0)):
    try:
        bad()
    except (TypeError, ValueError) as exc:
        print("REJECTED", type(exc).__name__)
t.shutdown()
try:
    t.add_data("kept", 3.0)
except RuntimeError as exc:
    print("AFTER-SHUTDOWN", exc)
time.sleep(1.5)
