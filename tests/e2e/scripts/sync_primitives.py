"""Every primitive across processes, a dead lock owner, timeouts, unpicklable items.

Run by tests/e2e/test_sync.py.
"""
import os, time
from mpigroup import (Barrier, BoundedSemaphore, Condition, Event, JoinableQueue, Lock, LockOwnerDied,
                      Process, Queue, RLock, Semaphore, SimpleQueue)

def worker(barrier, lock, counter_q, sem, cond, flag, jq, sq):
    barrier.wait(60)
    for _ in range(50):
        with lock:
            v = counter_q.get(timeout=30)
            counter_q.put(v + 1)
    with sem:
        pass
    with cond:
        cond.wait_for(flag.is_set, 60)
    item = jq.get(timeout=30)
    jq.task_done()
    sq.put(("done", item))

def die_holding(lock):
    lock.acquire()
    os._exit(3)

barrier, lock = Barrier(4), Lock()
counter_q, sem, cond, flag = Queue(), Semaphore(2), Condition(), Event()
jq, sq = JoinableQueue(), SimpleQueue()
counter_q.put(0)
procs = [Process(worker, args=(barrier, lock, counter_q, sem, cond, flag, jq, sq)) for _ in range(3)]
for p in procs:
    p.start()
barrier.wait(60)
time.sleep(0.5)
with cond:
    flag.set()
    cond.notify_all()
for i in range(3):
    jq.put(i)
jq.join(60)
done = sorted(sq.get(timeout=30) for _ in range(3))
for p in procs:
    p.join(30)
print("COUNTER", counter_q.get(timeout=10), done, [p.exitcode for p in procs])

b = BoundedSemaphore(1)
b.acquire()
b.release()
try:
    b.release()
except ValueError:
    print("BOUNDED ok")
r = RLock()
with r:
    with r:
        print("RLOCK reentrant")

dead = Lock()
p = Process(die_holding, args=(dead,)); p.start(); p.join(30)
try:
    dead.acquire(timeout=20)
except LockOwnerDied as exc:
    print("OWNER-DIED", p.exitcode, "exited without releasing" in str(exc))
t = time.monotonic()
print("TIMEOUT", Lock().acquire(timeout=0) is True, Event().wait(0.2) is False, round(time.monotonic() - t, 1) < 5)
try:
    Queue().put(lambda: 0 if False else (yield))
except TypeError:
    pass
try:
    import threading
    Queue().put(threading.Lock())
except TypeError as exc:
    print("UNPICKLABLE", "cannot be pickled" in str(exc))
