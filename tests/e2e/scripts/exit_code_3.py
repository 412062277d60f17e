"""Exits with status 3.

Run by tests/e2e/test_cli.py.
"""
raise SystemExit(3)
