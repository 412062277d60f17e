"""Prints RAN (when the run gets that far).

Run by tests/e2e/test_telemetry.py.
"""
print('RAN')
