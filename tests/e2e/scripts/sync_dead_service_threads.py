"""A dead universe step thread refuses joins; a dead member service refuses operations.

Run by tests/e2e/test_sync_errors.py.
"""
import time
import mpigroup
from mpigroup.errors import SharedObjectError
from mpigroup.sync import head_service, universe

def boom(self):
    raise RuntimeError("boom in the step thread")

head_service.UniverseHead._serve = boom
q = mpigroup.Queue()  # the head joins the universe: its step thread starts, and dies
time.sleep(0.5)
try:
    universe.head_service().request_join([12345])
except SharedObjectError as exc:
    print("JOIN-REFUSED", "boom in the step thread" in str(exc))

uni = universe.current()
uni.failure = RuntimeError("service gone")  # what a member's dead service thread leaves behind
uni.left.set()
try:
    q.put(1)
except SharedObjectError as exc:
    print("OPERATION-REFUSED", "service gone" in str(exc))
