"""Launching: `python -m mpigroup`, the `mpigroup` command, batch-system detection."""
