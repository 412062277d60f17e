"""Every program that runs in a process the runtime spawns (its code runs there, not in the spawner).

* ``python -m mpigroup.worker`` (:mod:`.main`, :mod:`.output`): a Python
  worker rank; boots from the head, runs its target, reports how it ended.
* ``python -m mpigroup.worker.shim`` (:mod:`.shim`): the launch shim of an
  MPI executable rank of a PMI pass-through world.
* ``python -m mpigroup.worker.pmi_python`` (:mod:`.pmi_python`): a Python
  target as a rank of a PMI pass-through world.

The runtime builds these command lines in :mod:`mpigroup.runtime.commands`.
This package imports nothing itself: each program loads only what it needs.
"""
