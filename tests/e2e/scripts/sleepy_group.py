"""Three sleeping members; with the argument `crash` the script raises after a second.

Run by tests/e2e/test_lifecycle.py.
"""
import sys, time
from mpigroup import ProcessGroup, ProcessTemplate
def sleeper():
    time.sleep(120)
pg = ProcessGroup(name="sleepy")
pg.add_process(3, ProcessTemplate(sleeper))
pg.start()
print("STARTED", [pg.pid(p) for p in pg.puids] if False else "", flush=True)
if sys.argv[1:] == ["crash"]:
    time.sleep(1)
    raise RuntimeError("user script failed on purpose")
pg.join()
