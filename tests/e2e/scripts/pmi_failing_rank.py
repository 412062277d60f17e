"""A PMI group of two /bin/sh ranks that exit with 7.

Run by tests/e2e/test_pmi.py.
"""
from mpigroup import ProcessGroup, ProcessTemplate, ProcessGroupError
pg = ProcessGroup(pmi=True, name="failing")
pg.add_process(2, ProcessTemplate("/bin/sh", args=["-c", "exit 7"]))
pg.start()
try:
    pg.join(timeout=60)
except ProcessGroupError as exc:
    print("REPORTED", exc)
