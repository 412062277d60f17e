"""A failing service thread is logged with its traceback and its object raises (never a silent hang)."""
from helpers import run_mpigroup, write_script

PUMP_FAILS = """
import time
from mpigroup import Pool
from mpigroup.pool import BrokenPool

def sq(x):
    return x * x

pool = Pool(2)
assert pool.map(sq, range(10)) == [x * x for x in range(10)]  # works before the failure

def broken_send():
    raise OSError("injected pump failure")

pool._send = broken_send  # the pump's next frame fails
r = pool.apply_async(sq, (3,))
try:
    r.get(60)
except BrokenPool as exc:
    print("PENDING", "injected pump failure" in str(exc))
for call in (lambda: pool.apply(sq, (2,)), lambda: pool.map(sq, range(3))):
    t0 = time.monotonic()
    while True:  # the pool is stopping its workers meanwhile
        try:
            call()
        except BrokenPool as exc:
            print("LATER", "pump thread failed" in str(exc))
            break
        except Exception as exc:
            print("OTHER", type(exc).__name__, exc)
            break
        if time.monotonic() - t0 > 30:
            print("HANG")
            break
pool.join(30)
print("DONE")
"""

MONITOR_FAILS = """
from mpigroup import Pool
from mpigroup.pool import BrokenPool

def sq(x):
    return x * x

pool = Pool(1)
def broken_check():
    raise RuntimeError("injected monitor failure")

pool._check_workers = broken_check
try:
    pool.apply_async(sq, (3,)).get(60)  # the monitor fails within 50 ms, before or after the result
except BrokenPool:
    pass
try:
    pool.apply(sq, (2,))
except BrokenPool as exc:
    print("BROKEN", "monitor thread failed" in str(exc))
pool.join(30)
"""

WATCH_FAILS = """
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
"""

UNPICKLABLE = """
import threading
from mpigroup import Process
from mpigroup.runtime import requests

class Unpicklable(Exception):
    def __init__(self, lock):
        super().__init__("cannot travel")
        self.lock = lock

def boom(head):
    raise Unpicklable(threading.Lock())

requests.register_provider(("test_boom",), lambda: {"test_boom": boom})

def ask():
    from mpigroup.errors import RemoteError
    from mpigroup.runtime import context
    try:
        context.current().api.call("test_boom")
    except RemoteError as exc:
        print("REMOTE", exc.exc_type, exc.message, "in boom" in exc.traceback_text, exc.host is not None, flush=True)

p = Process(ask)
p.start()
p.join(60)
print("EXIT", p.exitcode)
"""


def test_pool_pump_failure_breaks_the_pool(tmp_path):
    res = run_mpigroup(write_script(tmp_path, PUMP_FAILS), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PENDING True" in res.stdout and res.stdout.count("LATER True") == 2 and "DONE" in res.stdout, res.stdout
    assert "mpigroup: Pool: the pool's pump thread failed" in res.stderr
    assert "OSError: injected pump failure" in res.stderr  # with its traceback


def test_pool_monitor_failure_breaks_the_pool(tmp_path):
    res = run_mpigroup(write_script(tmp_path, MONITOR_FAILS), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BROKEN True" in res.stdout, res.stdout + res.stderr
    assert "monitor thread failed" in res.stderr and "RuntimeError: injected monitor failure" in res.stderr


def test_group_watch_failure_raises_from_join(tmp_path):
    res = run_mpigroup(write_script(tmp_path, WATCH_FAILS), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "GROUP True OSError" in res.stdout, res.stdout + res.stderr
    assert "restart/walltime thread failed" in res.stderr and "OSError: injected restart failure" in res.stderr


def test_unpicklable_head_error_arrives_with_its_traceback(tmp_path):
    res = run_mpigroup(write_script(tmp_path, UNPICKLABLE), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "REMOTE Unpicklable cannot travel True True" in res.stdout, res.stdout + res.stderr
    assert "EXIT 0" in res.stdout
