"""Queue, Event and the locks over RMA, end to end with real spawned ranks."""
import os

import pytest

from helpers import run_mpigroup, run_mpigroup_private_shm, wait_no_processes, write_script

SHARED_ACROSS_GROUPS = """
import time
from mpigroup import ProcessGroup, ProcessTemplate, Queue

def b_consumer(q, res, n):
    for _ in range(n):
        res.put(q.get(timeout=60))

def a_member(q, res, who):
    for i in range(100):
        q.put((who, i))
    if who == 0:  # a worker spawns group B later: another parent, another time
        time.sleep(0.5)
        g = ProcessGroup(name="B")
        g.add_process(2, ProcessTemplate(b_consumer, args=(q, res, 100)))
        g.start()
        g.join()

q, res = Queue(), Queue()
a = ProcessGroup(name="A")
a.add_process(1, ProcessTemplate(a_member, args=(q, res, 0)))
a.add_process(1, ProcessTemplate(a_member, args=(q, res, 1)))
a.start()
got = [res.get(timeout=120) for _ in range(200)]
a.join()
assert sorted(got) == sorted((w, i) for w in (0, 1) for i in range(100)), got
late = ProcessGroup(name="C")  # a third group, spawned after B has gone, still reads it
late.add_process(1, ProcessTemplate(a_member, args=(q, res, 7)))
late.start(); late.join()
assert [q.get(timeout=30) for _ in range(100)] == [(7, i) for i in range(100)]
print("SHARED-OK", q.empty(), res.qsize())
"""


def test_queue_shared_by_groups_spawned_at_different_times_by_different_parents(tmp_path):
    res = run_mpigroup(write_script(tmp_path, SHARED_ACROSS_GROUPS), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "SHARED-OK True 0" in res.stdout


OWNER_STOPPED = """
import os, signal, time
from mpigroup import Event, Process, Queue

def head_state(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]

def ping(a, b, ready, done, n, head_pid):
    ready.wait(60)
    deadline = time.monotonic() + 120
    while head_state(head_pid) != "T":  # start only once the head is really stopped
        assert time.monotonic() < deadline, "the head never stopped"
        time.sleep(0.01)
    for i in range(n):
        a.put(i)
        assert b.get(timeout=60) == i
    done.set()

def pong(a, b, ready, done, n, head_pid):
    for i in range(n):
        b.put(a.get(timeout=60))
    done.wait(120)  # ping's last get and done.set() come after our last put
    os.kill(head_pid, signal.SIGCONT)

a, b, ready, done = Queue(), Queue(), Event(), Event()
procs = [Process(ping, args=(a, b, ready, done, 1000, os.getpid())),
         Process(pong, args=(a, b, ready, done, 1000, os.getpid()))]
for p in procs:
    p.start()
ready.set()
os.kill(os.getpid(), signal.SIGSTOP)  # every thread of the owner stops until pong wakes it
print("WOKE done=%s a=%d b=%d" % (done.is_set(), a.qsize(), b.qsize()), flush=True)
for p in procs:
    p.join(30)
print("EXIT", [p.exitcode for p in procs])
"""


def test_progress_while_the_owner_is_stopped(tmp_path):
    """1000 round trips through queues held in the head's memory while every head thread is SIGSTOPped."""
    res = run_mpigroup(write_script(tmp_path, OWNER_STOPPED), timeout=180)
    assert res.returncode == 0, res.stderr
    assert "WOKE done=True a=0 b=0" in res.stdout, res.stdout + res.stderr
    assert "EXIT [0, 0]" in res.stdout


OWNER_SLEEPS = """
import os, sys, time
from mpigroup import Event, Process, Queue

def side(a, b, done, n, first, marker):
    for i in range(n):
        if first:
            a.put(i); assert b.get(timeout=60) == i
        else:
            b.put(a.get(timeout=60))
    if first:
        done.set()
        open(marker, "w").close()  # tells the owner without MPI

marker = sys.argv[1]
a, b, done = Queue(), Queue(), Event()
procs = [Process(side, args=(a, b, done, 1000, True, marker)), Process(side, args=(a, b, done, 1000, False, marker))]
for p in procs:
    p.start()
for p in procs:  # wait until both run, then sleep (pure Python, no MPI call) while they work
    while p.pid is None:
        time.sleep(0.01)
deadline = time.monotonic() + 150
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(0.05)
print("AWAKE", done.is_set(), flush=True)
for p in procs:
    p.join(30)
"""


def test_progress_while_the_owner_sleeps(tmp_path):
    res = run_mpigroup(write_script(tmp_path, OWNER_SLEEPS), str(tmp_path / "done"), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "AWAKE True" in res.stdout


LARGE = """
import hashlib, numpy as np
from mpigroup import Process, Queue

def send_big(q):
    arr = np.arange(256 * 2**20 // 8, dtype=np.int64)
    q.put(arr)
    q.put({"bytes": bytes(range(256)) * 40000, "nested": [np.ones((300, 300)), {"k": ("v", 1)}]})

q = Queue(capacity=4 << 20)  # far smaller than the payload: it streams through
p = Process(send_big, args=(q,)); p.start()
arr = q.get(timeout=120)
other = q.get(timeout=120)
p.join(60)
ok = arr.nbytes == 256 * 2**20 and int(arr[-1]) == arr.size - 1 and bool((arr[::4096] == np.arange(0, arr.size, 4096)).all())
print("LARGE", ok, arr.flags.writeable, len(other["bytes"]), float(other["nested"][0].sum()), other["nested"][1], p.exitcode)
"""


def test_large_objects_stream_through_a_small_ring(tmp_path):
    res = run_mpigroup(write_script(tmp_path, LARGE), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "LARGE True True 10240000 90000.0 {'k': ('v', 1)} 0" in res.stdout


STRESS = """
import zlib
from mpigroup import Process, Queue

N = 25_000

def producer(q, who):
    for i in range(N):
        q.put((who, i, zlib.crc32(b"%d:%d" % (who, i))))
    q.put(None)

def consumer(q, out):
    last = {}
    count = crc = 0
    in_order = True
    while True:
        item = q.get(timeout=120)
        if item is None:
            break
        who, i, c = item
        in_order &= i > last.get(who, -1)
        last[who] = i
        count += 1
        crc ^= c
    out.put((count, crc, in_order))

q, out = Queue(maxsize=1000), Queue()
procs = [Process(producer, args=(q, w)) for w in range(4)] + [Process(consumer, args=(q, out)) for _ in range(4)]
for p in procs:
    p.start()
results = [out.get(timeout=600) for _ in range(4)]
for p in procs:
    p.join(60)
expected = 0
for w in range(4):
    for i in range(N):
        expected ^= zlib.crc32(b"%d:%d" % (w, i))
total = sum(r[0] for r in results)
crc = 0
for r in results:
    crc ^= r[1]
print("STRESS", total, crc == expected, all(r[2] for r in results), [p.exitcode for p in procs])
"""


def test_stress_four_producers_four_consumers_100k(tmp_path):
    res = run_mpigroup(write_script(tmp_path, STRESS), timeout=900)
    assert res.returncode == 0, res.stderr
    assert "STRESS 100000 True True [0, 0, 0, 0, 0, 0, 0, 0]" in res.stdout


PRIMITIVES = """
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
"""


def test_primitives_across_processes(tmp_path):
    res = run_mpigroup(write_script(tmp_path, PRIMITIVES), timeout=240)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "COUNTER 150 [('done', 0), ('done', 1), ('done', 2)] [0, 0, 0]" in out, out + res.stderr
    assert "BOUNDED ok" in out and "RLOCK reentrant" in out
    assert "OWNER-DIED 3 True" in out
    assert "TIMEOUT True True True" in out
    assert "UNPICKLABLE True" in out


def test_no_processes_or_segments_left(tmp_path):
    script = write_script(tmp_path, SHARED_ACROSS_GROUPS)
    tag = f"sync-leak-check-{os.getpid()}"
    res, left = run_mpigroup_private_shm(script, timeout=240, tag=tag)
    assert res.returncode == 0, res.stderr
    assert wait_no_processes(tag) == []
    assert left == []  # this run's own /dev/shm (segments, arena) is empty at the end
