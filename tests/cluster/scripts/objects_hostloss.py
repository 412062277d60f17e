"""Shared objects when the host of their user is lost (its agent killed): errors, not hangs.

A worker on the last host holds a Lock, and another is in the middle of
streaming a 64 MiB frame into a 1 MiB queue. Prints READY; the test then
kills that host's agent (its workers die with it). The head then expects
LockOwnerDied and QueueBroken, each within the call's timeout, and prints
one line per outcome, then DONE.
"""
import time

import numpy as np

import mpigroup
from mpigroup import Node, Policy, Process, System
from mpigroup.errors import LockOwnerDied, QueueBroken

NAMES = [Node(n).hostname for n in System().nodes]
VICTIM = NAMES[-1]


def hold(lock, ready):
    lock.acquire()
    ready.release()
    time.sleep(600)


def stream(q, ready):
    ready.release()
    q.put(np.ones(8 << 20))  # 64 MiB through a 1 MiB ring: stays mid-frame until read


lock, q, ready = mpigroup.Lock(), mpigroup.Queue(capacity=1 << 20), mpigroup.Semaphore(0)
procs = [Process(target=hold, args=(lock, ready), policy=Policy(host_name=VICTIM)),
         Process(target=stream, args=(q, ready), policy=Policy(host_name=VICTIM))]
for p in procs:
    p.start()
for _ in procs:
    assert ready.acquire(timeout=120)
time.sleep(1.0)  # the stream fills the ring and waits, holding the producer lock
print("READY", VICTIM, flush=True)

t0 = time.monotonic()
try:
    lock.acquire(timeout=60)
    print("LOCK acquired (wrong)", flush=True)
except LockOwnerDied as exc:
    print(f"LOCK LockOwnerDied after {time.monotonic() - t0:.1f} s: {exc}", flush=True)
t0 = time.monotonic()
try:
    item = q.get(timeout=60)
    print("QUEUE got an item (wrong)", flush=True)
except QueueBroken as exc:
    print(f"QUEUE QueueBroken after {time.monotonic() - t0:.1f} s: {exc}", flush=True)
except Exception as exc:  # noqa: BLE001 - reported to the test
    print(f"QUEUE {type(exc).__name__}: {exc}", flush=True)
for p in procs:
    p.join(60)
print("EXITS", [p.exitcode for p in procs], flush=True)
print("DONE", flush=True)
