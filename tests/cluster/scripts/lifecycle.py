"""Exit statuses, remote tracebacks, signals, restart and walltime on a remote host.

Every check prints one ``RESULT name value`` line; the test reads them.
"""
import os
import signal
import sys
import time

from mpigroup import Policy, ProcessGroup, ProcessTemplate, System
from mpigroup.errors import ProcessGroupError


from mpigroup import Node  # noqa: E402

remote = Node(System().nodes[-1]).hostname
here = Policy(host_name=remote)


def result(name, value):
    print(f"RESULT {name} {value}", flush=True)


def fails():
    raise ValueError("broken on purpose")


def exits(code):
    sys.exit(code)


def sleeps(seconds):
    time.sleep(seconds)


def counts(path):
    with open(path, "a") as fh:
        fh.write("x")
    time.sleep(0.2)


# exit codes and a remote traceback naming the host
with ProcessGroup(name="codes") as g:
    g.add_process(1, ProcessTemplate(exits, args=(3,), policy=here))
    g.add_process(1, ProcessTemplate(exits, args=(0,), policy=here))
    g.start()
    try:
        g.join(timeout=60)
    except ProcessGroupError:
        pass
    while any(code is None for _, code in g.exit_status):
        time.sleep(0.05)
    result("codes", ",".join(str(c) for _, c in g.exit_status))
g = ProcessGroup(name="tb")
g.add_process(1, ProcessTemplate(fails, policy=here))
g.start()
try:
    g.join(timeout=60)
    result("traceback", "none")
except ProcessGroupError as exc:
    cause = exc.__cause__
    result("traceback", f"{type(cause).__name__}|{getattr(cause, 'host', None)}|"
                        f"{'ValueError: broken on purpose' in str(cause) + str(getattr(cause, 'traceback', ''))}")
g.close()

# stop / terminate / kill of remote members
for how, expect in (("stop", -signal.SIGINT), ("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)):
    g = ProcessGroup(name=how)
    g.add_process(2, ProcessTemplate(sleeps, args=(60,), policy=here))
    g.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    getattr(g, how)()
    try:
        g.join(timeout=30)
    except ProcessGroupError:
        pass
    result(how, ",".join(str(c) for _, c in g.exit_status) + f"|{time.monotonic() - t0:.1f}")
    g.close()

# restart: a member that exits is started again until the group is stopped
marks = os.path.join(os.environ["MPIGROUP_SHARED_DIR"], f"restarts-{os.getpid()}")
g = ProcessGroup(name="restart", restart=True)
g.add_process(1, ProcessTemplate(counts, args=(marks,), policy=here))
g.start()
deadline = time.monotonic() + 60
while (not os.path.exists(marks) or len(open(marks).read()) < 3) and time.monotonic() < deadline:
    time.sleep(0.1)
g.stop()
try:
    g.join(timeout=30)
except ProcessGroupError:
    pass
g.close()
result("restarts", len(open(marks).read()) >= 3)
os.unlink(marks)

# walltime stops remote members
g = ProcessGroup(name="walltime", walltime=2.0)
g.add_process(1, ProcessTemplate(sleeps, args=(60,), policy=here))
t0 = time.monotonic()
g.start()
try:
    g.join(timeout=30)
except Exception as exc:  # the group may report the stop as a failure
    result("walltime_error", type(exc).__name__)
result("walltime", f"{time.monotonic() - t0:.1f}|" + ",".join(str(c) for _, c in g.exit_status))
g.close()
print("DONE", flush=True)
