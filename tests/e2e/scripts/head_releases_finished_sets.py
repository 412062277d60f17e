"""Finished sets leave the head's table and their PMIx job data is released (issue 15, item 7)."""
import time

import mpigroup
from mpigroup.runtime import context, pmix_jobs

forgotten = []
_forget = pmix_jobs.forget_job


def recording_forget(nspace):
    forgotten.append(nspace)
    return _forget(nspace)


pmix_jobs.forget_job = recording_forget


def noop():
    pass


if __name__ == "__main__":
    head = context.current().head
    procs = [mpigroup.Process(target=noop) for _ in range(3)]
    for p in procs:
        p.start()
        p.join(120)
    deadline = time.monotonic() + 60
    while head.sets and time.monotonic() < deadline:
        time.sleep(0.05)
    print("SETS", len(head.sets))
    print("FORGOTTEN", len(forgotten), len(set(forgotten)), all(forgotten))
    print("EXITCODES", [p.exitcode for p in procs])  # status() of pruned sets still answers
