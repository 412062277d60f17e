"""User metrics from a Pool and the head; waits for the file `release` in its cwd before it ends.

Run by tests/e2e/test_telemetry.py.
"""
import os, time
from mpigroup import Pool, Telemetry

def work(i):
    t = Telemetry()
    for k in range(3):
        t.add_data("work_items", 10 * i + k, tags={"worker": i})
    t.add_data("too_detailed", 1.0, telemetry_level=3)      # above level 2: dropped
    t.shutdown()
    return i

Telemetry().add_data("head_metric", 42.0, timestamp=1_700_000_000.5)
with Pool(2) as pool:
    assert pool.map(work, range(4)) == [0, 1, 2, 3]
print("WORK-DONE", flush=True)
deadline = time.monotonic() + 90
while not os.path.exists("release") and time.monotonic() < deadline:
    time.sleep(0.1)
