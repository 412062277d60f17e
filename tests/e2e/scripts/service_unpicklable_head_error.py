"""A head error that cannot be pickled arrives as a RemoteError with its traceback.

Run by tests/e2e/test_service_threads.py.
"""
import threading
from mpigroup import Process
from mpigroup.runtime import requests

class Unpicklable(Exception):
    def __init__(self, lock):
        super().__init__("cannot travel")
        self.lock = lock

def boom(head):
    raise Unpicklable(threading.Lock())

requests.register_provider(("test_boom",), lambda: {"test_boom": boom})

def ask():
    from mpigroup.errors import RemoteError
    from mpigroup.runtime import context
    try:
        context.current().api.call("test_boom")
    except RemoteError as exc:
        print("REMOTE", exc.exc_type, exc.message, "in boom" in exc.traceback_text, exc.host is not None, flush=True)

p = Process(ask)
p.start()
p.join(60)
print("EXIT", p.exitcode)
