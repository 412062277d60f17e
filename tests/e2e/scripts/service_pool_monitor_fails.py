"""The pool's monitor thread fails: the pool raises BrokenPool.

Run by tests/e2e/test_service_threads.py.
"""
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
