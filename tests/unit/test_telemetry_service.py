"""The head's telemetry service without MPI: a failing store stops the aggregator loudly."""
from __future__ import annotations

import logging
import queue
import time

import pytest

from mpigroup.errors import TelemetryError
from mpigroup.telemetry import metrics
from mpigroup.telemetry.service import TelemetryService


class BrokenStore:
    """A run store whose databases cannot be opened (a full or vanished disk)."""

    def node(self, name: str):
        raise OSError(28, "No space left on device")


def _service_without_mpi() -> TelemetryService:
    service = TelemetryService.__new__(TelemetryService)
    service._init_state(level=1, interval=1.0)
    service.queue = queue.Queue()  # stands in for the mpigroup Queue (same get_nowait/Empty contract)
    service.store = BrokenStore()
    service.run_dir = "/nowhere/run"
    return service


def test_dead_aggregator_makes_the_heads_add_data_raise(monkeypatch, caplog):
    service = _service_without_mpi()
    tel = metrics.Telemetry.__new__(metrics.Telemetry)  # a head handle with telemetry on
    tel._level, tel._closed, tel._node = 1, False, "n1"
    monkeypatch.setattr(metrics, "_sink", service.local_put)
    with caplog.at_level(logging.ERROR, logger="mpigroup"):
        service._start_aggregator()
        tel.add_data("m", 1.0)  # accepted: the aggregator has not seen it yet
        service._thread.join(timeout=10)
    assert not service._thread.is_alive() and isinstance(service.failure, OSError)
    errors = [r for r in caplog.records if "aggregator error" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None  # logged once, with its traceback
    with pytest.raises(TelemetryError, match="aggregator stopped on OSError.*No space left") as info:
        tel.add_data("m", 2.0)
    assert isinstance(info.value, RuntimeError) and "/nowhere/run" in str(info.value)
    service._halt.set()


def test_a_working_aggregator_keeps_the_newest_value():
    service = _service_without_mpi()
    service.ingest = lambda batch: service._latest.update({(s[2], ()): (s[0], s[3]) for s in batch})
    service._start_aggregator()
    service.local_put((time.time(), "n1", "m", 3.0, {}))
    service.queue.put([(time.time(), "n2", "m", 4.0, {})])
    deadline = time.monotonic() + 10
    while len(service._local) or not service.queue.empty():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    service._halt.set()
    service._thread.join(timeout=10)
    assert service.failure is None and service.latest()[("m", ())][1] in (3.0, 4.0)


def test_add_data_after_shutdown_is_a_telemetry_error():
    tel = metrics.Telemetry.__new__(metrics.Telemetry)
    tel._level, tel._closed, tel._node = 1, True, "n1"
    with pytest.raises(TelemetryError, match="after shutdown"):
        tel.add_data("m", 1.0)
