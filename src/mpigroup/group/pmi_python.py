"""Run a cloudpickled Python target as one rank of a PMI pass-through world.

``python -m mpigroup.group.pmi_python`` with the target in
``MPIGROUP_PMI_PAYLOAD`` (base64 cloudpickle; in the environment so that no
other user can read it with ``ps``): the target's own ``mpi4py`` sees the
group's ``MPI_COMM_WORLD``.
"""
import base64
import os
import sys
import traceback

import cloudpickle

if __name__ == "__main__":
    fn, args, kwargs = cloudpickle.loads(base64.b64decode(os.environ.pop("MPIGROUP_PMI_PAYLOAD")))
    try:
        result = fn(*args, **kwargs)
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(exc.code % 256 if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except BaseException as exc:
        # like `python -m mpi4py`: never wait in MPI_Finalize for peers that
        # may be blocked in a collective with this rank; leave at once
        traceback.print_exc()
        error_file = os.environ.get("MPIGROUP_ERROR_FILE")
        if error_file:  # the shim hands it to the head as the RemoteError
            import json

            with open(error_file, "w") as fh:
                json.dump([type(exc).__qualname__, str(exc), traceback.format_exc()], fh)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.exit(result % 256 if isinstance(result, int) else 0)
