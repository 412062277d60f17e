"""Put one item and get it back (used with bad and good settings).

Run by tests/e2e/test_sync_errors.py.
"""
from mpigroup import Queue
q = Queue()
q.put(1)
print("GOT", q.get(timeout=30))
