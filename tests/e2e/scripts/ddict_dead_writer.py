"""A client killed while it streams a 64 MiB put into a manager's request ring (issue 15, item 2).

The manager is stopped (SIGSTOP) while the worker streams, so the 64 MiB
frame cannot pass its 1 MiB request ring (MPIGROUP_DDICT_CHANNEL_BYTES, set
by the test): the head waits until the ring's producer lock is recorded as
the worker's, kills the worker, and lets the manager go on. Only that put may
be lost: the head (also from a thread that was waiting on the held ring) and
another worker then put and get small and large values on the same shard.

Run by tests/e2e/test_ddict_dead_writer.py.
"""
import os
import signal
import threading
import time

import numpy as np

from mpigroup import DDict, DDictError, Event, Process
from mpigroup.ddict.transport import RequestChannel
from mpigroup.sync import rma, ring, serialize, universe

TIMEOUT = 120  # every request's limit: generous for a loaded machine, far below a hang

d = DDict(managers_per_node=1, total_mem=512 << 20, timeout=TIMEOUT)
manager_pid = d.stats[0]["pid"]
chan = d._channels[0]
errors = []


def owner_of_write_side(chan=chan) -> tuple[int, bool]:
    """(pid recorded as the request ring's producer, whether its lock is held)."""
    uni = universe.current()
    with uni.lock:
        return rma.load(uni, chan._word(ring.OWNER_W)), bool(rma.load(uni, chan._word(ring.WPOS)) & 1)


def big_put(h, ready, go, started):
    ready.set()  # it has joined the shared-object universe (which takes the manager's part: not while stopped)
    go.wait()
    started.set()
    h["victim"] = np.ones(64 << 20, np.uint8)  # 64 MiB through a 1 MiB ring
    print("VICTIM-PUT-FINISHED", flush=True)    # never: it is killed mid-stream


def other_client(h, n):
    h["from-worker"] = np.full(n, 7, np.uint8)
    h["small-from-worker"] = "w"
    assert h["from-worker"].sum() == 7 * n and h["small-from-worker"] == "w"
    assert h["head-big"].nbytes == 16 << 20
    print("WORKER-OK", flush=True)


def two_frames(chan, started):
    chan.send(serialize.dumps("complete"), None)  # a whole frame, then one that cannot fit: nobody reads
    started.set()
    chan.send(serialize.dumps(np.ones(4 << 20, np.uint8)), None)


def wait_for_owner(pid, chan=chan):
    deadline = time.monotonic() + TIMEOUT
    while owner_of_write_side(chan) != (pid, True):  # it holds the ring and streams (into a full ring)
        assert time.monotonic() < deadline, owner_of_write_side(chan)
        time.sleep(0.01)


def guarded(what, fn):
    """Run fn; record any error, which must be a DDictError."""
    try:
        return fn()
    except DDictError as exc:
        errors.append(f"{what}: DDictError {type(exc).__name__}: {exc}")
    except BaseException as exc:
        errors.append(f"{what}: NOT A DDictError {type(exc).__name__}: {exc}")


d["before"] = 1
ready, go, started = Event(), Event(), Event()
victim = Process(target=big_put, args=(d, ready, go, started))
victim.start()
assert ready.wait(TIMEOUT)
os.kill(manager_pid, signal.SIGSTOP)
go.set()
assert started.wait(TIMEOUT)
wait_for_owner(victim.pid)
os.kill(victim.pid, signal.SIGKILL)
victim.join(TIMEOUT)
print("VICTIM-KILLED", victim.exitcode == -signal.SIGKILL, flush=True)

# A client that was waiting on the held ring when the manager went on.
waiter = threading.Thread(target=guarded, args=("waiter", lambda: d.__setitem__("from-waiter", b"x" * 100)))
waiter.start()
os.kill(manager_pid, signal.SIGCONT)

guarded("head-small", lambda: d.__setitem__("head-small", 42))
guarded("head-big", lambda: d.__setitem__("head-big", np.full(16 << 20, 3, np.uint8)))
waiter.join(TIMEOUT)
print("HEAD-READ", guarded("head-read", lambda: (d["head-small"], int(d["head-big"].sum()), d["from-waiter"],
                                                 d["before"])), flush=True)
other = Process(target=other_client, args=(d, 24 << 20))
other.start()
other.join(TIMEOUT)
print("WORKER-EXIT", other.exitcode, flush=True)
print("VICTIM-ABSENT", guarded("contains", lambda: "victim" not in d), flush=True)
print("KEYS", sorted(guarded("keys", d.keys) or []), flush=True)
print("ERRORS", errors, flush=True)

# The reader finds the dead producer between frames (not in the middle of reading its frame):
# the complete frame before it is kept, the unfinished one is dropped, the ring goes on.
req = RequestChannel(1 << 20)
req.claim()  # this process is its reader
started = Event()
writer = Process(target=two_frames, args=(req, started))
writer.start()
assert started.wait(TIMEOUT)
wait_for_owner(writer.pid, req)
os.kill(writer.pid, signal.SIGKILL)
writer.join(TIMEOUT)
print("DROPPED", req.drop_dead_writer(), req.drop_dead_writer(), flush=True)
first = req.recv(time.monotonic() + TIMEOUT)
req.send(serialize.dumps("after"), time.monotonic() + TIMEOUT)
print("RING-AFTER", serialize.loads(first), serialize.loads(req.recv(time.monotonic() + TIMEOUT)),
      req.recv(time.monotonic() + 0.1), flush=True)
req.destroy()
d.destroy()
print("DONE", flush=True)
