"""``Telemetry``: user metrics from any process of a run (Dragon's API).

``Telemetry().add_data(name, value, timestamp=None, telemetry_level=1, tags=None)``
records one sample of a user metric on the node of the calling process. A
sample whose ``telemetry_level`` is above the run's active level
(``MPIGROUP_TELEMETRY_LEVEL``, read once per process) is dropped: with
telemetry off every call returns after one comparison.

On the head, samples go straight to the telemetry service; anywhere else
they travel through the run's telemetry queue (an mpigroup ``Queue`` whose
handle every spawned rank inherits), which the head drains into the store
and the ``/metrics`` endpoint.

A sample travels as a plain tuple ``(ts, node, metric, value, tags)``
(:data:`~mpigroup.telemetry.naming.Sample`), not a NamedTuple: pickling a
NamedTuple for the queue costs about ten times as much as a tuple, and a
worker's ``add_data`` pickles every sample it sends.

Only :mod:`.config` and :mod:`.naming` are imported with this module: the
service (MPI, prometheus-client) loads on the first sample that is kept.
"""
from __future__ import annotations

import math
import numbers
import time
from typing import Any, Mapping, Optional

from ..base import config as settings
from ..errors import TelemetryError
from ..runtime import context
from ..runtime.nodeinfo import node_name
from . import config, naming

__all__ = ["Telemetry", "active_level"]

_level: Optional[int] = None
_sink: Any = None  # callable(sample) of this process, resolved on first use


def active_level() -> int:
    """The run's telemetry level, read once per process from ``MPIGROUP_TELEMETRY_LEVEL``."""
    global _level
    if _level is None:
        _level = config.level()
    return _level


def _resolve_sink() -> Any:
    global _sink
    if _sink is not None:
        return _sink
    ctx = context.require_worker_or_head()
    if ctx.role == "head":
        from . import service  # the head's service: loaded only once a sample is kept

        svc = service.ensure_started()
        _sink = svc.local_put
        return _sink
    from .service import decode_handle  # the service module loads only in processes that report

    encoded = settings.get("MPIGROUP_TELEMETRY_QUEUE")
    if not encoded:
        raise TelemetryError(f"telemetry level {active_level()} is set in this process, but the run's head "
                           "started no telemetry service before this process was spawned (set MPIGROUP_TELEMETRY_LEVEL or "
                           "`mpigroup run --telemetry-level N` for the whole run, not inside a worker)")
    _sink = decode_handle(encoded).put
    return _sink


class Telemetry:
    """Per-process handle for user metrics; cheap to create, safe to share between threads."""

    def __init__(self) -> None:
        self._level = active_level()
        self._node = node_name() if self._level else ""
        self._closed = False

    @property
    def level(self) -> int:
        """The active telemetry level of the run (0: off)."""
        return self._level

    def add_data(self, name: str, value: float, timestamp: Optional[float] = None, telemetry_level: int = 1,
                 tags: Optional[Mapping[str, Any]] = None) -> None:
        """Record ``value`` for metric ``name`` now (or at ``timestamp``, epoch seconds) with optional ``tags``.

        Dropped without a trace when ``telemetry_level`` is above the active level (always when telemetry
        is off). Raises ``ValueError``/``TypeError`` for a bad name, value, level or tag, and
        :class:`~mpigroup.errors.TelemetryError` (a ``RuntimeError``) after :meth:`shutdown`, or on
        the head once its aggregator has stopped on an error.
        """
        if telemetry_level > self._level:
            return
        if self._closed:
            raise TelemetryError("Telemetry.add_data() after shutdown()")
        if isinstance(telemetry_level, bool) or telemetry_level not in (1, 2, 3):
            raise ValueError(f"telemetry_level must be 1, 2 or 3, got {telemetry_level!r}")
        naming.check_metric_name(name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"telemetry value of {name!r} must be a real number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"telemetry value of {name!r} must be finite, got {value!r}")
        if timestamp is None:
            timestamp = time.time()
        elif isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Real):
            raise TypeError(f"telemetry timestamp must be epoch seconds, got {type(timestamp).__name__}")
        elif not math.isfinite(timestamp):
            raise ValueError(f"telemetry timestamp of {name!r} must be finite, got {timestamp!r}")
        _resolve_sink()((float(timestamp), self._node, name, float(value), naming.check_tags(tags)))

    def shutdown(self) -> None:
        """Stop sending from this handle and make sure what it sent has left this process.

        On the head this also stops the node monitors (their last samples are stored); the
        store and the endpoint stay up until the run ends.
        """
        if self._closed:
            return
        self._closed = True
        if not self._level or _sink is None:
            return
        owner = getattr(_sink, "__self__", None)
        if hasattr(owner, "_flush"):
            owner._flush(30.0)  # a queue handle: its feeder (if any) has written everything
        else:
            from . import service  # loaded already: the sink is the head's service

            svc = service.current()
            if svc is not None:
                svc.stop_monitors()

    finalize = shutdown  # Dragon's name

