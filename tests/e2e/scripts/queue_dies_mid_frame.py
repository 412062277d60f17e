"""A producer or a consumer SIGKILLed in the middle of a 64 MiB frame through a 1 MiB ring: QueueBroken, never a hang.

``writer before|after``: a worker's put is streaming when it is killed; the
head's ``get(timeout=10)`` is already receiving that frame when the kill comes
(the producer is SIGSTOPped first, so the get is certainly mid-frame), or
starts after it. Later gets and puts on the queue raise QueueBroken too.

``reader queue|simple``: the head's put is streaming when the worker that
receives it is killed. ``queue``: ``Queue.put``'s feeder thread stops at once
(logging how many items it dropped), so ``join_thread()`` and the exit do not
wait for it. ``simple``: ``SimpleQueue.put(timeout=10)`` raises QueueBroken.
Every head thread's shared-object operation holds the universe lock, so
holding it here freezes the head's writer while the consumer is certainly mid-frame.

Run by tests/e2e/test_queue_faults.py.
"""
import os, queue, signal, sys, threading, time
import numpy as np
from mpigroup import Event, Process, Queue, QueueBroken, SimpleQueue
from mpigroup.sync import rma, universe
from mpigroup.sync.ring import OWNER_R, OWNER_W, RPOS, WPOS

RING = 1 << 20  # 64 MiB through a 1 MiB ring: many chunks


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


def outcome(call):
    try:
        return f"returned {call()!r:.40}"
    except QueueBroken as exc:
        return f"QueueBroken ({exc})"
    except queue.Empty:
        return "Empty"


def put_big(q):
    q.put(np.ones(64 << 20, np.uint8))  # the feeder streams it in; with no consumer it stops at 1 MiB
    q.close()
    q.join_thread()


def dead_writer(when):
    q = Queue(capacity=RING)
    p = Process(put_big, args=(q,))
    p.start()
    # the producer is mid-frame: it holds the write side and the ring is full
    wait_for(lambda: word(q, WPOS) & 1 and word(q, OWNER_W) == p.pid
             and (word(q, WPOS) & ~1) - (word(q, RPOS) & ~1) >= RING - 8, "the producer to fill the ring")
    print("MID-FRAME", flush=True)
    result = {}
    if when == "before":
        os.kill(p.pid, signal.SIGSTOP)  # the frame cannot complete now
        getter = threading.Thread(target=lambda: result.setdefault("get", outcome(lambda: q.get(timeout=10))))
        getter.start()
        # the get is receiving: it holds the read side and has read all there is
        wait_for(lambda: word(q, RPOS) & 1 and word(q, OWNER_R) == os.getpid()
                 and word(q, RPOS) & ~1 == word(q, WPOS) & ~1, "the get to be mid-frame")
        os.kill(p.pid, signal.SIGKILL)
        print("KILLED", flush=True)
        getter.join()
    else:
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        print("KILLED", flush=True)
        result["get"] = outcome(lambda: q.get(timeout=10))
    print("FIRST-GET", result["get"], flush=True)
    print("SECOND-GET", outcome(lambda: q.get(timeout=10)), flush=True)
    print("PUT-SMALL", outcome(lambda: q.put(1)), flush=True)
    print("PUT-BIG", outcome(lambda: q.put(np.ones(4 << 20, np.uint8))), flush=True)
    p.join(60)
    print("EXITCODE", p.exitcode, flush=True)


def get_one(q, ready, go):
    ready.set()
    go.wait(120)
    q.get()  # killed while it streams the frame in


def dead_reader(kind):
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


{"writer": dead_writer, "reader": dead_reader}[sys.argv[1]](sys.argv[2])
