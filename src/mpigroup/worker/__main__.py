"""``python -m mpigroup.worker``: MPI is initialised before anything else is
imported, because the head's MPI_Comm_spawn waits for every rank's MPI_Init.
A worker started by a node agent (``--agent``, other hosts) never uses MPI."""
import sys

if "--agent" not in sys.argv[1:2]:
    from mpi4py import MPI  # noqa: F401  (first on purpose)
else:  # shared-object code may import mpi4py.MPI later: it must not initialise MPI here
    import mpi4py

    mpi4py.rc.initialize = mpi4py.rc.finalize = False

from .main import main  # noqa: E402

main()
