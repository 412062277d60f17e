"""Telemetry settings from the environment (pure; no MPI, no third-party imports).

``mpigroup run --telemetry-level N --telemetry-port P`` sets the variables
below; a plain ``mpiexec ... python -m mpigroup`` reads them from the
environment as they are.

| variable | meaning | default |
|---|---|---|
| ``MPIGROUP_TELEMETRY_LEVEL`` | 0 off, 1 user metrics, 2 + host metrics, 3 + GPU metrics | 0 |
| ``MPIGROUP_TELEMETRY_PORT`` | port of the head's HTTP endpoint (0: any free port) | 8000 |
| ``MPIGROUP_TELEMETRY_ADDR`` | address the endpoint binds to | 127.0.0.1 |
| ``MPIGROUP_TELEMETRY_INTERVAL`` | seconds between two samples of a node monitor | 1.0 |
| ``MPIGROUP_TELEMETRY_DIR`` | where run stores are kept | ./mpigroup-telemetry |
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

__all__ = ["MAX_LEVEL", "DEFAULT_PORT", "DEFAULT_ADDR", "level", "port", "bind_address", "interval", "base_dir"]

MAX_LEVEL = 3
DEFAULT_PORT = 8000
DEFAULT_ADDR = "127.0.0.1"
DEFAULT_DIR = "mpigroup-telemetry"


def _env(env: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if env is None else env


def level(env: Optional[Mapping[str, str]] = None) -> int:
    """The active telemetry level (0-3); a bad value raises ``ValueError`` naming the variable."""
    raw = _env(env).get("MPIGROUP_TELEMETRY_LEVEL", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MPIGROUP_TELEMETRY_LEVEL must be an integer 0-{MAX_LEVEL}, got {raw!r}") from None
    if not 0 <= value <= MAX_LEVEL:
        raise ValueError(f"MPIGROUP_TELEMETRY_LEVEL must be 0-{MAX_LEVEL}, got {value}")
    return value


def port(env: Optional[Mapping[str, str]] = None) -> int:
    """Port of the head's endpoint; 0 lets the OS pick a free one."""
    raw = _env(env).get("MPIGROUP_TELEMETRY_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"MPIGROUP_TELEMETRY_PORT must be a port number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"MPIGROUP_TELEMETRY_PORT must be 0-65535, got {value}")
    return value


def bind_address(env: Optional[Mapping[str, str]] = None) -> str:
    """Address the endpoint binds to: loopback unless the user asks for another one."""
    return _env(env).get("MPIGROUP_TELEMETRY_ADDR", "").strip() or DEFAULT_ADDR


def interval(env: Optional[Mapping[str, str]] = None) -> float:
    """Seconds between two samples of a node monitor."""
    raw = _env(env).get("MPIGROUP_TELEMETRY_INTERVAL", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"MPIGROUP_TELEMETRY_INTERVAL must be a number of seconds, got {raw!r}") from None
    if not 0.05 <= value <= 3600:
        raise ValueError(f"MPIGROUP_TELEMETRY_INTERVAL must be between 0.05 and 3600 s, got {value}")
    return value


def base_dir(env: Optional[Mapping[str, str]] = None) -> str:
    """Directory that holds one sub-directory per run (it outlives the run)."""
    return os.path.abspath(_env(env).get("MPIGROUP_TELEMETRY_DIR", "").strip() or DEFAULT_DIR)
