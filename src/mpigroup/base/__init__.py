"""The leaf layer: waiting, settings, logging, shutdown hooks, process and MPI-environment helpers.

Nothing here imports from mpigroup except :mod:`mpigroup.errors`, and nothing
here loads MPI, so every other package may use it (see ``docs/architecture.md``).
"""
