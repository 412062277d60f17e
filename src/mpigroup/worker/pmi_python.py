"""``python -m mpigroup.worker.pmi_python``: a Python target as one rank of a PMI pass-through world.

The target comes in ``MPIGROUP_PMI_PAYLOAD`` (base64 cloudpickle; in the
environment so that no other user can read it with ``ps``): the target's own
``mpi4py`` sees the group's ``MPI_COMM_WORLD``. This program imports no MPI
itself; the target does, when it wants it.
"""
from __future__ import annotations

import base64
import json
import os
import sys
import traceback

import cloudpickle

from ..base import config
from ..runtime.commands import ERROR_FILE_ENV, PAYLOAD_ENV


def main() -> None:
    """Run the target; leave with its exit code, never through ``MPI_Finalize`` after an error."""
    payload = config.get(PAYLOAD_ENV)
    os.environ.pop(PAYLOAD_ENV, None)  # not for the target's own children
    fn, args, kwargs = cloudpickle.loads(base64.b64decode(payload))
    try:
        result = fn(*args, **kwargs)
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(exc.code % 256 if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except BaseException as exc:
        # like `python -m mpi4py`: never wait in MPI_Finalize for peers that
        # may be blocked in a collective with this rank; leave at once
        traceback.print_exc()  # the rank's own stderr: the user's output, as Python would print it
        error_file = config.get(ERROR_FILE_ENV)
        if error_file:  # the shim hands it to the head as the RemoteError
            with open(error_file, "w") as fh:
                json.dump([type(exc).__qualname__, str(exc), traceback.format_exc()], fh)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.exit(result % 256 if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
