"""Every shared object used across hosts: created on one host, used from the others.

argv: the checks to run (default: all but "stress"). Prints "OK <check> ..." per check,
then DONE. The head (first host) creates most objects; workers on every other
host use them, and some objects are created on another host and used here.
"""
import os
import sys
import time
import zlib

import numpy as np

import mpigroup
from mpigroup import DDict, Node, Policy, Pool, Process, System
from mpigroup.errors import LockOwnerDied

NAMES = [Node(n).hostname for n in System().nodes]
HEAD, OTHERS = NAMES[0], NAMES[1:]


def on(host):
    return Policy(host_name=host)


def run_on(host, target, *args):
    p = Process(target=target, args=args, policy=on(host))
    p.start()
    return p


def joined(*procs, timeout=120):
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"{p} exited with {p.exitcode}"


# ------------------------------------------------------------------ queues
def echo(q_in, q_out, n):
    for _ in range(n):
        q_out.put(q_in.get(timeout=60))


def check_queue():
    for host in OTHERS:
        a, b = mpigroup.Queue(), mpigroup.Queue()
        p = run_on(host, echo, a, b, 200)
        t0 = time.perf_counter()
        for i in range(200):
            a.put(("item", i))
            assert b.get(timeout=60) == ("item", i)
        rt = (time.perf_counter() - t0) / 200
        joined(p)
    print(f"OK queue rt_us={rt * 1e6:.0f}", flush=True)


def make_and_send(back):
    """Objects created on another host, used on the head's."""
    q, ev = mpigroup.Queue(), mpigroup.Event()
    back.put((q, ev))
    q.put("from-" + os.uname().nodename)
    assert ev.wait(60)


def check_created_elsewhere():
    back = mpigroup.Queue()
    p = run_on(OTHERS[0], make_and_send, back)
    q, ev = back.get(timeout=60)
    assert q.get(timeout=60) == "from-" + OTHERS[0]
    ev.set()
    joined(p)
    print("OK created_elsewhere", flush=True)


def task_worker(jq, out):
    while True:
        item = jq.get(timeout=60)
        if item is None:
            jq.task_done()
            return
        out.put(item * 2)
        jq.task_done()


def check_joinable_and_simple():
    jq, out = mpigroup.JoinableQueue(), mpigroup.SimpleQueue()
    procs = [run_on(h, task_worker, jq, out) for h in OTHERS]
    for i in range(50):
        jq.put(i)
    for _ in procs:
        jq.put(None)
    jq.join(timeout=60)
    got = sorted(out.get(timeout=60) for _ in range(50))
    assert got == [2 * i for i in range(50)], got
    joined(*procs)
    print("OK joinable_simple", flush=True)


def grandchild(q):
    q.put(("grandchild", os.uname().nodename))


def child_spawning(q, host):
    p = run_on(host, grandchild, q)
    joined(p)


def check_grandchildren():
    """A handle passed on twice: head -> worker on one host -> its child on another host."""
    q = mpigroup.Queue()
    hosts = OTHERS + [HEAD]
    p = run_on(OTHERS[0], child_spawning, q, hosts[1])
    assert q.get(timeout=60) == ("grandchild", hosts[1])
    joined(p)
    print("OK grandchildren", flush=True)


def send_array(q, n):
    a = np.arange(n, dtype=np.float64)
    q.put(a)
    back = q  # the same queue: wait for the echo from the head
    del back


def check_large():
    n = (int(os.environ.get("OBJECTS_LARGE_MIB", "256")) << 20) // 8
    q, r = mpigroup.Queue(), mpigroup.Queue()
    p = run_on(OTHERS[0], echo, q, r, 1)
    a = np.arange(n, dtype=np.float64)
    t0 = time.perf_counter()
    q.put(a)
    b = r.get(timeout=300)
    dt = time.perf_counter() - t0
    assert b.shape == a.shape and np.array_equal(a, b)
    joined(p)
    print(f"OK large mib={a.nbytes >> 20} roundtrip_s={dt:.2f}", flush=True)


# ------------------------------------------------------------------ locks and events
def set_later(ev, delay):
    time.sleep(delay)
    ev.set()


def check_event():
    for host in OTHERS:
        ev = mpigroup.Event()
        p = run_on(host, set_later, ev, 0.2)
        assert ev.wait(60), "event never set from the other host"
        joined(p)
    print("OK event", flush=True)


def hold(lock, ev, seconds):
    with lock:
        ev.set()
        time.sleep(seconds)


def check_locks():
    for cls in (mpigroup.Lock, mpigroup.RLock):
        lock, ev = cls(), mpigroup.Event()
        p = run_on(OTHERS[-1], hold, lock, ev, 0.5)
        assert ev.wait(60)
        assert not lock.acquire(timeout=0.05), f"{cls.__name__} held on the other host was taken here"
        assert lock.acquire(timeout=60)
        lock.release()
        joined(p)
    print("OK locks", flush=True)


def take_and_die(lock, ev):
    lock.acquire()
    ev.set()
    os._exit(3)


def check_owner_died():
    """Host-aware liveness: a lock whose owner on another host exited raises; a live one does not."""
    lock, ev = mpigroup.Lock(), mpigroup.Event()
    p = run_on(OTHERS[-1], take_and_die, lock, ev)
    assert ev.wait(60)
    p.join(60)
    assert p.exitcode == 3
    try:
        lock.acquire(timeout=30)
    except LockOwnerDied as exc:
        assert "puid" in str(exc), exc
    else:
        raise AssertionError("no LockOwnerDied for a lock whose owner exited on another host")
    print("OK owner_died", flush=True)


def sem_user(sem, counter_lock, active, peak, n):
    for _ in range(n):
        with sem:
            with counter_lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.005)
            with counter_lock:
                active[0] -= 1


def check_semaphores():
    from mpigroup.sync.primitives import SharedWords

    sem, lock = mpigroup.BoundedSemaphore(2), mpigroup.Lock()
    active, peak = SharedWords(1), SharedWords(1)
    procs = [run_on(h, sem_user, sem, lock, active, peak, 10) for h in OTHERS for _ in range(2)]
    joined(*procs)
    assert 1 <= peak[0] <= 2, peak[0]
    try:
        sem.release()
    except ValueError:
        pass
    else:
        raise AssertionError("BoundedSemaphore released past its value")
    print(f"OK semaphores peak={peak[0]}", flush=True)


def cond_waiter(cond, box, ready):
    with cond:
        ready.release()
        assert cond.wait_for(lambda: box[0] == 7, timeout=60)


def check_condition_barrier():
    from mpigroup.sync.primitives import SharedWords

    cond, box, ready = mpigroup.Condition(), SharedWords(1), mpigroup.Semaphore(0)
    procs = [run_on(h, cond_waiter, cond, box, ready) for h in OTHERS]
    for _ in procs:
        assert ready.acquire(timeout=60)
    with cond:
        box[0] = 7
        cond.notify_all()
    joined(*procs)
    barrier = mpigroup.Barrier(len(OTHERS) + 1)
    procs = [run_on(h, barrier.wait, 60) for h in OTHERS]
    barrier.wait(60)
    joined(*procs)
    print("OK condition_barrier", flush=True)


# ------------------------------------------------------------------ pool and ddict
def where(barrier, x):
    barrier.wait(120)  # every worker holds one task at once: each host's workers take part
    return os.uname().nodename, x * x


def square(x):
    return x * x


def check_pool():
    n = 2 * len(NAMES)
    barrier = mpigroup.Barrier(n)
    with Pool(processes=n, policy=[on(h) for h in NAMES for _ in range(2)]) as pool:
        t0 = time.perf_counter()
        results = pool.starmap(where, [(barrier, x) for x in range(n)], chunksize=1)
        squares = pool.map(square, range(2000))
        dt = time.perf_counter() - t0
    assert [r[1] for r in results] == [x * x for x in range(n)]
    hosts = {r[0] for r in results}
    assert hosts == set(NAMES), hosts
    assert squares == [x * x for x in range(2000)]
    print(f"OK pool hosts={len(hosts)} seconds={dt:.2f}", flush=True)


def check_executor():
    """PoolExecutor with workers on every host: every host's workers take a barrier task."""
    from mpigroup import PoolExecutor

    n = 2 * len(NAMES)
    barrier = mpigroup.Barrier(n)
    with PoolExecutor(max_workers=n, policy=[on(h) for h in NAMES for _ in range(2)]) as ex:
        hosts = {r[0] for r in ex.map(where, [barrier] * n, range(n))}
        futs = [ex.submit(square, x) for x in range(500)]
        assert [f.result(120) for f in futs] == [x * x for x in range(500)]
    assert hosts == set(NAMES), hosts
    print(f"OK executor hosts={len(hosts)}", flush=True)


def ddict_user(d, host, n):
    for i in range(n):
        d[(host, i)] = np.full(4, i)
    d[("done", host)] = True


def check_ddict():
    d = DDict(managers_per_node=1)
    try:
        managers = {st["host"] for st in d.stats}
        assert managers == set(NAMES), managers
        procs = [run_on(h, ddict_user, d, h, 100) for h in OTHERS]
        joined(*procs)
        for h in OTHERS:
            assert d[("done", h)] is True
            assert all(int(d[(h, i)][0]) == i for i in range(100))
        assert len(d) == 100 * len(OTHERS) + len(OTHERS)
    finally:
        d.destroy()
    print(f"OK ddict managers={len(managers)}", flush=True)


# ------------------------------------------------------------------ stress
def producer(q, ident, n):
    for i in range(n):
        payload = f"{ident}:{i}".encode()
        q.put((ident, i, zlib.crc32(payload), payload))
    q.put(None)


def consumer(q, out, n_producers_total):
    seen = []
    while True:
        item = q.get(timeout=600)
        if item is None:
            break
        ident, i, crc, payload = item
        assert zlib.crc32(payload) == crc and payload == f"{ident}:{i}".encode()
        seen.append((ident, i))
    out.put(seen)


def check_stress():
    total = int(os.environ.get("OBJECTS_STRESS_MESSAGES", "100000"))
    q, out = mpigroup.Queue(), mpigroup.Queue()
    hosts = NAMES * 4
    per = total // 4
    producers = [run_on(hosts[k], producer, q, k, per) for k in range(4)]
    consumers = [run_on(hosts[k + 1], consumer, q, out, 4) for k in range(4)]
    t0 = time.perf_counter()
    joined(*producers, timeout=900)  # each ends with one None: every consumer stops at the first it gets
    seen = [out.get(timeout=600) for _ in consumers]
    joined(*consumers, timeout=600)
    dt = time.perf_counter() - t0
    flat = [x for s in seen for x in s]
    assert len(flat) == len(set(flat)) == 4 * per, (len(flat), len(set(flat)))
    for s in seen:  # order kept per producer, within what each consumer saw
        last = {}
        for ident, i in s:
            assert i > last.get(ident, -1), (ident, i, last.get(ident))
            last[ident] = i
    print(f"OK stress messages={len(flat)} seconds={dt:.1f}", flush=True)


CHECKS = {"queue": check_queue, "created_elsewhere": check_created_elsewhere,
          "joinable_simple": check_joinable_and_simple, "grandchildren": check_grandchildren,
          "event": check_event, "locks": check_locks, "owner_died": check_owner_died,
          "semaphores": check_semaphores, "condition_barrier": check_condition_barrier,
          "pool": check_pool, "executor": check_executor, "ddict": check_ddict, "large": check_large, "stress": check_stress}
for name in sys.argv[1:] or [c for c in CHECKS if c != "stress"]:
    CHECKS[name]()
print("DONE", flush=True)
