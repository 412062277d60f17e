"""Members killed, segfaulting and exiting hard; prints the exit codes.

Run by tests/e2e/test_process_group.py.
"""
import json, os, signal, socket, sys, time
from mpigroup import ProcessGroup, ProcessTemplate, Process, Policy, System, Node, cpu_count
from mpigroup import ProcessGroupError, RemoteError, PolicyError
def emit(**kw):
    print("RESULT " + json.dumps(kw), flush=True)

def sleeper():
    time.sleep(60)
def segfault():
    import ctypes
    ctypes.string_at(0)
def hard_exit():
    os._exit(5)
pg = ProcessGroup(name="sig", ignore_error_on_exit=True)
pg.add_process(3, ProcessTemplate(sleeper))
pg.add_process(1, ProcessTemplate(segfault))
pg.add_process(1, ProcessTemplate(hard_exit))
pg.start()
deadline = time.time() + 30
while pg.pid(pg.puids[0]) is None and time.time() < deadline:
    time.sleep(0.05)
os.kill(pg.pid(pg.puids[0]), signal.SIGKILL)
time.sleep(1.0)
running_after_kill = [code is None for _, code in pg.exit_status][1:3]
pg.stop(patience=5)
emit(status=pg.exit_status, running_after_kill=running_after_kill, error_state=pg.in_error_state)
