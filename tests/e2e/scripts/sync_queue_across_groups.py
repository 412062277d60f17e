"""A Queue shared by groups spawned at different times by different parents.

Run by tests/e2e/test_sync.py.
"""
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
