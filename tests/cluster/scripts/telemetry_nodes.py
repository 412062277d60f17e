"""Telemetry level 2 across hosts: the head's service runs, a monitor samples every node."""
import time

from mpigroup import Telemetry

Telemetry().add_data("head_metric", 7.0)
time.sleep(3.0)
print("DONE", flush=True)
