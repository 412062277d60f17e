"""1000 round trips through the head's queues while every head thread is SIGSTOPped.

Run by tests/e2e/test_sync.py.
"""
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
