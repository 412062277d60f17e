"""Spawned worker ranks: ``python -m mpigroup.worker``."""
