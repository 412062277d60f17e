"""Telemetry settings, read through :mod:`mpigroup.base.config` (pure; no MPI, no third-party imports).

``mpigroup run --telemetry-level N --telemetry-port P`` sets the variables
below; a plain ``mpiexec ... python -m mpigroup`` reads them from the
environment as they are. Each function reads its variable when called (from
``env`` when given, else ``os.environ``); a bad value raises
:class:`~mpigroup.errors.SettingError` (a ``ValueError``) naming the variable,
the value and what is allowed. Defaults, bounds and meanings are declared
once in :data:`mpigroup.base.config.SETTINGS`:

| variable | meaning | default |
|---|---|---|
| ``MPIGROUP_TELEMETRY_LEVEL`` | 0 off, 1 user metrics, 2 + host metrics, 3 + GPU metrics | 0 |
| ``MPIGROUP_TELEMETRY_PORT`` | port of the head's HTTP endpoint (0: any free port) | 8000 |
| ``MPIGROUP_TELEMETRY_ADDR`` | address the endpoint binds to | 127.0.0.1 |
| ``MPIGROUP_TELEMETRY_INTERVAL`` | seconds between two samples of a node monitor | 1.0 |
| ``MPIGROUP_TELEMETRY_DIR`` | where run stores are kept | ./mpigroup-telemetry |
| ``MPIGROUP_TELEMETRY_MAX_POINTS`` | most points one OpenTSDB query may return | 100000 |
| ``MPIGROUP_TELEMETRY_CORS_ORIGIN`` | the one origin browsers may read the endpoint from | (none) |
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from ..base import config

__all__ = ["MAX_LEVEL", "DEFAULT_PORT", "DEFAULT_ADDR", "DEFAULT_DIR", "level", "port", "bind_address",
           "interval", "base_dir",
           "max_points", "cors_origin"]

MAX_LEVEL = int(config.SETTINGS["MPIGROUP_TELEMETRY_LEVEL"].high)
DEFAULT_PORT = config.SETTINGS["MPIGROUP_TELEMETRY_PORT"].default
DEFAULT_ADDR = config.SETTINGS["MPIGROUP_TELEMETRY_ADDR"].default
DEFAULT_DIR = config.SETTINGS["MPIGROUP_TELEMETRY_DIR"].default

Env = Optional[Mapping[str, str]]


def level(env: Env = None) -> int:
    """The active telemetry level (0-3)."""
    return config.get("MPIGROUP_TELEMETRY_LEVEL", env)


def port(env: Env = None) -> int:
    """Port of the head's endpoint; 0 lets the OS pick a free one."""
    return config.get("MPIGROUP_TELEMETRY_PORT", env)


def bind_address(env: Env = None) -> str:
    """Address the endpoint binds to: loopback unless the user asks for another one."""
    return config.get("MPIGROUP_TELEMETRY_ADDR", env)


def interval(env: Env = None) -> float:
    """Seconds between two samples of a node monitor."""
    return config.get("MPIGROUP_TELEMETRY_INTERVAL", env)


def base_dir(env: Env = None) -> str:
    """Directory that holds one sub-directory per run (it outlives the run), as an absolute path."""
    return os.path.abspath(config.get("MPIGROUP_TELEMETRY_DIR", env))


def max_points(env: Env = None) -> int:
    """Most points one OpenTSDB query may return: bounds the work a request costs the head."""
    return config.get("MPIGROUP_TELEMETRY_MAX_POINTS", env)


def cors_origin(env: Env = None) -> str:
    """The one web origin (``http://host:port``) allowed to read the endpoint from a browser; "" for none."""
    return config.get("MPIGROUP_TELEMETRY_CORS_ORIGIN", env)
