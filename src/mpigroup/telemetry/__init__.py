"""Node telemetry and user metrics: monitors, a per-node SQLite store, Prometheus and OpenTSDB exporters.

``from mpigroup import Telemetry`` for user metrics; ``open_run(path)`` reads a
finished (or running) run's store. The pure pieces (:mod:`.config`,
:mod:`.naming`, :mod:`.runstore`, :mod:`.opentsdb`) never import MPI.
"""
from __future__ import annotations

from . import config
from .metrics import Telemetry, active_level
from .runstore import RunStore, Series, resolve_run


def open_run(run: str = "latest") -> RunStore:
    """Open a run's store read-only: a directory, a run id under the telemetry dir, or ``latest``."""
    return RunStore(resolve_run(run, config.base_dir()))


__all__ = ["Telemetry", "RunStore", "Series", "active_level", "open_run"]
