"""SIGKILLs the workers while a task runs, lets one exit mid-task; the pool reports and replaces them.

Run by tests/e2e/test_pool.py.
"""
import os, signal, sys, time
from mpigroup import Pool, WorkerLostError

def slow(x, started=None):
    if started:
        open(started, "w").close()
    time.sleep(2)
    return x

def die(x):
    os._exit(7)

def sq(x):
    return x * x

started = sys.argv[1]
with Pool(2) as pool:
    r = pool.apply_async(slow, (1, started))
    deadline = time.monotonic() + 120
    while not os.path.exists(started) and time.monotonic() < deadline:  # the task runs: kill now
        time.sleep(0.01)
    from mpigroup.runtime import context
    statuses = context.current().api.call("status", puids=[puid for _, puid in pool._workers.values()])
    for st in statuses:
        os.kill(st["pid"], signal.SIGKILL)
    t = time.monotonic()
    try:
        r.get(60)
    except WorkerLostError as exc:
        print("LOST", "-9" in str(exc), round(time.monotonic() - t) < 30)
        cause = exc.__cause__
        print("CAUSE", cause.puid is not None, "killed by signal 9" in cause.traceback_text, cause.host is not None)
    try:
        pool.apply(die, (1,))
    except WorkerLostError as exc:
        print("EXITED", "code 7" in str(exc))
    print("STILL-WORKS", pool.map(sq, range(6)))
    t0 = time.monotonic()
    r = pool.apply_async(slow, (3,))
print("TERMINATED-FAST", time.monotonic() - t0 < 10)
try:
    r.get(5)
except Exception as exc:
    print("AFTER-TERMINATE", type(exc).__name__)
