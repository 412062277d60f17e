"""A member that leaves while a membership step is on its way must stay out of it (issue 15, item 5).

The lost ``Semaphore.release()`` of CPython's ``test_notify_all`` was a failed
universe step: a child that had finished ``f`` called ``leave()`` while its
service thread was receiving the message of the step that admits the next
child. The service thread then took the step anyway, the child exited in the
middle of it (``os._exit`` does not wait for the service thread), the step's
``Accept`` failed (``MPI_ERR_PROC_FAILED``; ``MPI_ERR_INTERN`` on the head),
the newcomer's ``Connect`` failed, and the newcomer exited with code 70 before
its target ran: its release never came, and the parent waited forever.

The race is made certain here: ``leave()`` runs inside the stand-in
communicator's ``recv``. No MPI is initialized (the communicator is a stand-in).
"""
import subprocess
import sys

SCRIPT = r"""
import threading

import mpi4py

mpi4py.rc.initialize = False  # nothing here needs MPI: the communicator is a stand-in
from mpigroup.sync import universe


class Comm:
    probes = 0

    def Iprobe(self, source, tag, status):
        self.probes += 1
        return self.probes == 1  # one step message, then none

    def recv(self, source, tag):
        # the main thread leaves (its target returned) while the step message is received
        t = threading.Thread(target=universe.leave)
        t.start()
        t.join(10)
        assert not t.is_alive(), "leave() blocked"
        return universe.StepMessage("port-of-the-next-newcomer")


uni = universe.Universe.__new__(universe.Universe)  # no window: nothing below touches it
uni.comm = Comm()
uni.lock = threading.RLock()
uni.left = threading.Event()
uni._releases = []
uni._release_lock = threading.Lock()
uni.failure = None
steps = []
uni.take_step = lambda *args: steps.append(args) or []
universe._universe = uni

service = threading.Thread(target=uni._serve, daemon=True)
service.start()
service.join(20)
print("SERVICE-ENDED", not service.is_alive())
print("LEFT", uni.left.is_set())
print("STEPS-TAKEN", len(steps))
"""


def test_a_member_that_left_takes_no_step_that_was_on_its_way():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SERVICE-ENDED True" in res.stdout, res.stdout + res.stderr
    assert "LEFT True" in res.stdout, res.stdout + res.stderr
    # a process that has left is about to exit: a step it took would break when it dies
    assert "STEPS-TAKEN 0" in res.stdout, res.stdout + res.stderr
