"""PoolExecutor (submit, map, errors, cancel on shutdown) and mp.Pool under the start method.

Run by tests/e2e/test_pool.py.
"""
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
