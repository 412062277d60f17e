"""Idle waiters sleep in the kernel on their object's doorbell, and a change wakes them."""
import os
import time

import mpigroup
from mpigroup.sync import bells


def futex_offsets(pid):
    """Offsets in the run's bells file of the futex words the threads of ``pid`` sleep on."""
    ranges = []
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            if line.rstrip().endswith("/" + bells.FILE_NAME):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                ranges.append((lo, hi))
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as fh:
                fields = fh.read().split()
        except OSError:
            continue
        if len(fields) > 1 and fields[0] == str(bells._SYS_FUTEX):
            address = int(fields[1], 16)
            found |= {address - lo for lo, hi in ranges if lo <= address < hi}
    return found


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
        offset = bells.bell_of(obj._offset) * 64
        while offset not in futex_offsets(pids[what]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        asleep[what] = offset in futex_offsets(pids[what])
    print("ASLEEP", asleep["get"], asleep["event"], asleep["lock"], flush=True)
    q.put("item")
    e.set()
    lock.release()
    results = dict(report.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(120)
    print("WOKEN", results["got"], results["woke"], results["locked"], [p.exitcode for p in procs], flush=True)
