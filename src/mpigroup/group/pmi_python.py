"""Run a cloudpickled Python target as one rank of a PMI pass-through world.

``python -m mpigroup.group.pmi_python PAYLOAD_B64``: the target's own
``mpi4py`` sees the group's ``MPI_COMM_WORLD``.
"""
import base64
import sys

import cloudpickle

if __name__ == "__main__":
    fn, args, kwargs = cloudpickle.loads(base64.b64decode(sys.argv[1]))
    result = fn(*args, **kwargs)
    sys.exit(result if isinstance(result, int) else 0)
