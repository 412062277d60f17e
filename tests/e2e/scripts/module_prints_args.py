"""Prints its arguments; run as `python -m mpigroup -m mymod a b` (copied as mymod.py).

Run by tests/e2e/test_process_group.py.
"""
import sys
print('module ran', sys.argv[1:])
