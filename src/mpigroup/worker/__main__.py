"""``python -m mpigroup.worker``: MPI is initialised before anything else is
imported, because the head's MPI_Comm_spawn waits for every rank's MPI_Init."""
from mpi4py import MPI  # noqa: F401  (first on purpose)

from .main import main

main()
