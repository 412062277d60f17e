"""Idle waiters sleep in the kernel on their object's doorbell, and a change wakes them."""
import os
import time

import mpigroup
from mpigroup.sync import bells


def get_one(report, q):
    report.put(("get", os.getpid()))
    report.put(("got", q.get(timeout=300)))


def wait_event(report, e):
    report.put(("event", os.getpid()))
    report.put(("woke", e.wait(timeout=300)))


def take_lock(report, lock):
    report.put(("lock", os.getpid()))
    got = lock.acquire(timeout=300)
    report.put(("locked", got))
    lock.release()


if __name__ == "__main__":
    report, q, e, lock = mpigroup.Queue(), mpigroup.Queue(), mpigroup.Event(), mpigroup.Lock()
    lock.acquire()
    procs = [mpigroup.Process(get_one, args=(report, q)), mpigroup.Process(wait_event, args=(report, e)),
             mpigroup.Process(take_lock, args=(report, lock))]
    for p in procs:
        p.start()
    pids = dict(report.get(timeout=120) for _ in procs)
    expected = {"get": q, "event": e, "lock": lock}
    asleep = {}
    deadline = time.monotonic() + 120
    for what, obj in expected.items():
        bell = bells.bell_of(obj._offset)
        while bell not in bells.asleep_on(pids[what]):  # in futex() on the bell of its object
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        asleep[what] = bell in bells.asleep_on(pids[what])
    print("ASLEEP", asleep["get"], asleep["event"], asleep["lock"], flush=True)
    q.put("item")
    e.set()
    lock.release()
    results = dict(report.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(120)
    print("WOKEN", results["got"], results["woke"], results["locked"], [p.exitcode for p in procs], flush=True)
