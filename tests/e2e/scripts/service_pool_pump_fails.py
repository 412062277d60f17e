"""The pool's pump thread fails: the pool raises BrokenPool.

Run by tests/e2e/test_service_threads.py.
"""
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
