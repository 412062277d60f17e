"""A consumer SIGKILLed in the middle of a 64 MiB frame that the head is putting: the put never hangs.

Argument ``queue``: ``Queue.put``'s feeder thread is streaming the frame; it
stops at once (logging how many items it dropped), so ``join_thread()`` and
the exit do not wait for it. ``simple``: ``SimpleQueue.put(timeout=10)``
streams it itself and raises QueueBroken. Every head thread's shared-object
operation holds the universe lock, so holding it here freezes the head's
writer while the consumer is certainly mid-frame. Run by tests/e2e/test_queue_faults.py.
"""
import os, queue, signal, sys, threading, time
import numpy as np
from mpigroup import Event, Process, Queue, QueueBroken, SimpleQueue
from mpigroup.sync import rma, universe
from mpigroup.sync.ring import OWNER_R, OWNER_W, RPOS, WPOS

RING = 1 << 20


def word(q, i):
    uni = universe.current()
    with uni.lock:
        return rma.load(uni, q._word(i))


def wait_for(cond, what, timeout=120.0):
    """Poll a condition on the ring's shared state (bounded; not a sleep standing in for an event)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.005)


def get_one(q, ready, go):
    ready.set()
    go.wait(120)
    q.get()  # killed while it streams the frame in


def outcome(call):
    try:
        return f"returned {call()!r:.40}"
    except QueueBroken as exc:
        return f"QueueBroken ({exc})"
    except queue.Empty:
        return "Empty"


def main(kind):
    q = Queue(capacity=RING) if kind == "queue" else SimpleQueue(capacity=RING)
    ready, go = Event(), Event()
    p = Process(get_one, args=(q, ready, go))
    p.start()
    ready.wait(120)
    result = {}
    if kind == "queue":
        q.put(np.ones(64 << 20, np.uint8))  # the feeder streams it in; with no consumer it stops at 1 MiB
    else:
        putter = threading.Thread(target=lambda: result.setdefault(
            "put", outcome(lambda: q.put(np.ones(64 << 20, np.uint8), timeout=10))))
        putter.start()
    wait_for(lambda: word(q, WPOS) & 1 and word(q, OWNER_W) == os.getpid()
             and (word(q, WPOS) & ~1) - (word(q, RPOS) & ~1) >= RING - 8, "the head to fill the ring")
    uni = universe.current()
    with uni.lock:  # the head's writer cannot move now
        if kind == "queue":
            q.put("small")  # behind the big one, in the feeder's buffer
        go.set()
        wait_for(lambda: word(q, RPOS) & 1 and word(q, OWNER_R) == p.pid
                 and word(q, RPOS) & ~1 == word(q, WPOS) & ~1, "the consumer to be mid-frame")
        os.kill(p.pid, signal.SIGKILL)
        print("KILLED", flush=True)
    print("GET-AFTER", outcome(lambda: q.get(timeout=10)), flush=True)
    if kind == "queue":
        q.close()
        q.join_thread()  # returns once the feeder has stopped
    else:
        putter.join()
        print("PUT", result["put"], flush=True)
    print("THREADS", sorted(t.name for t in threading.enumerate()), flush=True)
    p.join(60)
    print("EXITCODE", p.exitcode, flush=True)


main(sys.argv[1])
