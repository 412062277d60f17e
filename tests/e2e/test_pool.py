"""Pool and PoolExecutor end to end: real spawned workers, RMA queues."""
from helpers import run_mpigroup, wait_no_processes, write_script

POOL_API = """
import os, time
import mpigroup
from mpigroup import Pool

def sq(x):
    return x * x

def boom(x):
    raise ValueError(f"bad {x}")

def pid_and_env(_):
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")

def init(tag):
    global TAG
    TAG = tag

def tagged(x):
    return TAG, x

scale = 3
got = []
with Pool(2, initializer=init, initargs=("ready",)) as pool:
    assert pool.map(sq, range(100)) == [x * x for x in range(100)]
    assert pool.map(sq, range(100), chunksize=7) == [x * x for x in range(100)]
    assert pool.map(sq, []) == []
    assert pool.apply(sq, (9,)) == 81
    assert pool.starmap(pow, [(2, 5), (3, 3)]) == [32, 27]
    assert pool.starmap_async(pow, [(2, 2)]).get(30) == [4]
    assert list(pool.imap(sq, range(20), chunksize=3)) == [x * x for x in range(20)]
    assert sorted(pool.imap_unordered(sq, range(20))) == sorted(x * x for x in range(20))
    assert pool.map(lambda x: x * scale, [1, 2]) == [3, 6]          # lambdas and closures
    import numpy as np
    assert pool.apply(np.sum, (np.arange(10),)) == 45                 # numpy arguments, in band
    big = pool.map(lambda a: a + a, [np.ones(100_000)] * 3, chunksize=1)  # over 64 KiB: out of band
    assert [float(b.sum()) for b in big] == [200_000.0] * 3
    assert pool.apply(tagged, (1,)) == ("ready", 1)                   # initializer ran
    r = pool.apply_async(sq, (4,), callback=got.append)
    assert r.get(30) == 16 and r.ready() and r.successful()
    r = pool.map_async(boom, [1, 2], error_callback=got.append)
    try:
        r.get(30)
    except ValueError as exc:
        cause = exc.__cause__
        print("REMOTE", type(cause).__name__, cause.host is not None, "in boom" in cause.traceback_text)
    assert not r.successful()
    try:
        pool.apply(print, (open,)) if False else pool.apply(sq, (lambda: (yield),))
    except TypeError:
        pass
    import threading
    try:
        pool.apply(sq, (threading.Lock(),))
    except TypeError as exc:
        print("UNPICKLABLE-ARG", "cannot be pickled" in " ".join(exc.__notes__))
    try:
        pool.apply(threading.Lock().acquire)
    except TypeError as exc:
        print("UNPICKLABLE-FN", "cannot be pickled" in " ".join(exc.__notes__))
    try:
        pool.apply_async(time.sleep, (5,)).get(timeout=0.2)
    except TimeoutError:
        print("GET-TIMEOUT")
print("CALLBACKS", got[0], type(got[1]).__name__)

with Pool(2, maxtasksperchild=2) as pool:
    pids = {pid for pid, _ in pool.map(pid_and_env, range(12), chunksize=1)}
    print("MAXTASKS", len(pids) >= 4)

pool = Pool(2)
assert pool.map(sq, range(10)) == [x * x for x in range(10)]
pool.close()
pool.join(60)
try:
    pool.apply(sq, (1,))
except ValueError:
    print("CLOSED")
print("DEFAULT", Pool()._processes == mpigroup.cpu_count())
"""


def test_pool_api(tmp_path):
    res = run_mpigroup(write_script(tmp_path, POOL_API), timeout=300, tag="pool-api")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("REMOTE RemoteError True True", "UNPICKLABLE-ARG True", "UNPICKLABLE-FN True", "GET-TIMEOUT",
                 "CALLBACKS 16 ValueError", "MAXTASKS True", "CLOSED", "DEFAULT True"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-api") == []


DEAD_WORKER = """
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
"""


def test_pool_dead_worker_is_reported_and_replaced(tmp_path):
    res = run_mpigroup(write_script(tmp_path, DEAD_WORKER), str(tmp_path / "started"), timeout=300, tag="pool-dead")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("LOST True True", "CAUSE True True True", "EXITED True", "STILL-WORKS [0, 1, 4, 9, 16, 25]", "TERMINATED-FAST True",
                 "AFTER-TERMINATE PoolTerminated"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-dead") == []


POLICIES = """
import os
from mpigroup import Pool, System

def where(_):
    import socket, time
    time.sleep(0.1)  # long enough that every worker takes tasks
    return socket.gethostname(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()

policies = System().gpu_policies()
print("NGPU", len(policies))
with Pool(policy=policies, processes_per_policy=1) as pool:
    seen = {}
    for host, gpu, pid in pool.map(where, range(40), chunksize=1):
        seen.setdefault(pid, set()).add(gpu)
    print("WORKERS", len(seen), sorted(g for gpus in seen.values() for g in gpus))
"""


def test_pool_one_worker_per_gpu_policy(tmp_path):
    res = run_mpigroup(write_script(tmp_path, POLICIES), timeout=300, env={"MPIGROUP_GPUS": "nvidia:0-3"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "NGPU 4" in res.stdout
    assert "WORKERS 4 ['0', '1', '2', '3']" in res.stdout, res.stdout


EXECUTOR_AND_MP = """
import concurrent.futures as cf
import multiprocessing as mp
import time
import mpigroup
from mpigroup import PoolExecutor

def sq(x):
    return x * x

def boom():
    raise KeyError("nope")

with PoolExecutor(2) as ex:
    futures = [ex.submit(sq, i) for i in range(20)]
    print("SUBMIT", [f.result(30) for f in futures] == [i * i for i in range(20)])
    print("MAP", list(ex.map(sq, range(10), chunksize=3)) == [i * i for i in range(10)])
    try:
        ex.submit(boom).result(30)
    except KeyError:
        print("RAISES KeyError")
    assert isinstance(ex.submit(sq, 2), cf.Future)
ex = PoolExecutor(1)
slow = [ex.submit(time.sleep, 1) for _ in range(5)]
ex.shutdown(wait=True, cancel_futures=True)
print("CANCELLED", sum(f.cancelled() for f in slow) >= 3)
try:
    ex.submit(sq, 1)
except RuntimeError:
    print("SHUTDOWN")

mp.set_start_method("mpigroup")
with mp.Pool(2) as pool:
    print("MP-POOL", type(pool).__module__, pool.map(sq, range(5)))
"""


def test_pool_executor_and_mp_pool(tmp_path):
    res = run_mpigroup(write_script(tmp_path, EXECUTOR_AND_MP), timeout=300, tag="pool-exec")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("SUBMIT True", "MAP True", "RAISES KeyError", "CANCELLED True", "SHUTDOWN",
                 "MP-POOL mpigroup.pool.pool [0, 1, 4, 9, 16]"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-exec") == []


def test_pool_example_runs_with_and_without_gpus():
    from helpers import REPO

    script = REPO / "examples" / "0_pool.py"
    res = run_mpigroup(script, timeout=300, env={"MPIGROUP_GPUS": "none"})
    assert res.returncode == 0, res.stderr
    assert "no GPUs in this allocation" in res.stdout
    assert sum(int(line.rsplit(":", 1)[1].split()[0]) for line in res.stdout.splitlines()
               if " items" in line) == 200
    res = run_mpigroup(script, timeout=300, env={"MPIGROUP_GPUS": "nvidia:0-1"})
    assert res.returncode == 0, res.stderr
    gpus = {line.rsplit(" ", 1)[1] for line in res.stdout.splitlines() if "with GPU" in line}
    assert gpus == {"0", "1"}, res.stdout


LOST_FRAME = """
import os
from mpigroup import Pool, WorkerLostError

def f(x):
    if x == 137:
        os._exit(3)
    return x * x

with Pool(2) as pool:
    pool.map(f, range(100), chunksize=1)          # short tasks: later frames carry several tasks
    results = [pool.apply_async(f, (x,)) for x in range(100, 300)]
    ok, running, lost_after, other = 0, [], [], []
    for x, r in zip(range(100, 300), results):
        try:
            assert r.get(120) == x * x
            ok += 1
        except WorkerLostError as exc:
            (running if "while running" in str(exc) else lost_after if "after running" in str(exc)
             else other).append(x)
    print("RUNNING", running)
    print("LOST-BEFORE-137", all(x < 137 for x in lost_after), "OTHER", other)
    print("ALL-ACCOUNTED", ok + len(running) + len(lost_after) == 200)
    print("STILL-WORKS", pool.map(f, range(5)))
"""


def test_pool_worker_lost_mid_frame_fails_what_it_ran_and_reruns_the_rest(tmp_path):
    """A worker dies in a frame of several tasks: the task it ran fails, tasks it finished before lose their
    results (WorkerLostError), the tasks it never started run elsewhere and succeed."""
    res = run_mpigroup(write_script(tmp_path, LOST_FRAME), timeout=300, tag="pool-frame")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for line in ("RUNNING [137]", "LOST-BEFORE-137 True OTHER []", "ALL-ACCOUNTED True",
                 "STILL-WORKS [0, 1, 4, 9, 16]"):
        assert line in out, (line, out, res.stderr)
    assert wait_no_processes("pool-frame") == []
