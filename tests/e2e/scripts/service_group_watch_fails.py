"""A group's watch thread fails: join() raises ProcessGroupError.

Run by tests/e2e/test_service_threads.py.
"""
import time
from mpigroup import ProcessGroup, ProcessGroupError, ProcessTemplate

def nap():
    time.sleep(0.2)

group = ProcessGroup(restart=True, name="watched")
group.add_process(1, ProcessTemplate(nap))
def broken_spawn(slots):
    raise OSError("injected restart failure")

group.init()
group.start()
group._spawn_slots = broken_spawn  # the restart after the member exits fails
try:
    group.join(timeout=30)
except ProcessGroupError as exc:
    print("GROUP", "restart/walltime thread" in str(exc), type(exc.__cause__).__name__)
group.stop(patience=1)
