"""Level 3 on a machine without NVML: counts the GPU samplers and adds a level-3 metric.

Run by tests/e2e/test_telemetry.py.
"""
import mpigroup
from mpigroup import Telemetry
from mpigroup.telemetry.monitor import open_gpu_samplers
import time
logged = []
print("SAMPLERS", len(open_gpu_samplers("here", logged.append)), len(logged))
Telemetry().add_data("level3_user", 7.0, telemetry_level=3)
time.sleep(2.0)
