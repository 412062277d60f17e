"""Prints x (the --dry-run tests never run it).

Run by tests/e2e/test_cli.py.
"""
print('x')
