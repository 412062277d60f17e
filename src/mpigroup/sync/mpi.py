"""``mpi4py.MPI`` for the shared-object modules, loaded after mpigroup's MPI defaults.

Importing ``mpi4py.MPI`` initialises MPI, which reads its environment once:
mpigroup's defaults (:func:`mpigroup.runtime.context.prepare_mpi_environment`)
must be in ``os.environ`` before that. Every module of this package that
needs MPI imports it from here (``from .mpi import MPI``); the pure ones
(``arena``, ``serialize``) do not, so importing them loads no MPI and
changes no environment variable.
"""
from __future__ import annotations

from ..runtime.context import prepare_mpi_environment

prepare_mpi_environment()

from mpi4py import MPI  # noqa: E402  (after the defaults above)

__all__ = ["MPI"]
