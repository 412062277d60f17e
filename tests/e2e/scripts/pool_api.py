"""The whole Pool API: map variants, apply, callbacks, remote errors, unpicklable input, maxtasksperchild.

Run by tests/e2e/test_pool.py.
"""
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
