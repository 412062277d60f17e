"""The head's telemetry service: queue, node monitors, aggregator, store and endpoint.

Started on the head at boot when ``MPIGROUP_TELEMETRY_LEVEL`` > 0 (or on the
first ``Telemetry()`` of an embedded head), stopped first thing at head
shutdown:

* an mpigroup ``Queue`` carries samples from every process to the head; its
  pickled handle is exported as ``MPIGROUP_TELEMETRY_QUEUE``, which every
  spawned rank inherits, so ``Telemetry().add_data`` works anywhere;
* at level >= 2, one monitor process per node (a ProcessGroup over
  ``System().hostname_policies()``) samples every ``MPIGROUP_TELEMETRY_INTERVAL``
  seconds;
* an aggregator thread drains the queue a few times a second into the run's
  SQLite store (one database per node) and keeps the newest value per series
  for ``/metrics``;
* one HTTP server serves ``/metrics`` and the OpenTSDB API.

If the aggregator stops on an error (the store cannot be written), the error
is logged with its traceback and the head's next ``Telemetry().add_data``
raises :class:`~mpigroup.errors.TelemetryError` naming it, instead of samples
piling up unseen.
"""
from __future__ import annotations

import base64
import collections
import logging
import os
import pickle
import queue
import threading
import time
from typing import Any, Optional

from ..base import shutdown
from ..base.shutdown import Stage
from ..errors import TelemetryError
from ..runtime import context
from ..runtime.nodeinfo import node_name
from ..system import System
from . import config
from .exporter import start_server
from .monitor import run_monitor
from .runstore import RunStore, new_run_dir, write_batch

log = logging.getLogger(__name__)

__all__ = ["TelemetryService", "current", "start", "ensure_started", "stop", "QUEUE_ENV"]

QUEUE_ENV = "MPIGROUP_TELEMETRY_QUEUE"  # written here for spawned ranks; read through base.config
DRAIN_PERIOD = 0.25  # seconds between two drains of the queue when it was empty


def encode_handle(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj)).decode()


def decode_handle(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))


class TelemetryService:
    """Everything telemetry runs on the head for one run."""

    def __init__(self, level: int, *, port: int, address: str, interval: float, base: str) -> None:
        self._init_state(level, interval)
        from ..sync import Event, Queue  # loads MPI: only once a service starts

        self.queue = Queue()
        self.stop_monitors_event = Event()
        self.server, self._server_thread = start_server(self, address, port)  # first: a busy port leaves nothing
        try:
            self.run_dir = new_run_dir(base)
            self.store = RunStore(self.run_dir, readonly=False)
        except BaseException:
            self.server.server_close()
            raise
        host, bound = self.server.server_address[:2]
        self.url = f"http://{host}:{bound}"
        self.port = bound

    def _init_state(self, level: int, interval: float) -> None:
        """The service's bookkeeping, apart from its queue, server and store (tests build it alone)."""
        self.level = level
        self.interval = interval
        self.node = node_name()
        self._latest: dict[tuple, tuple[float, float]] = {}
        self._local: collections.deque = collections.deque()  # the head's own add_data samples
        self._halt = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._monitors: Any = None
        self._monitors_checked = 0.0
        self._monitors_warned = False
        self.stored = 0
        self.dropped = 0
        self._drop_warned = False
        self.failure: Optional[BaseException] = None  # what stopped the aggregator, if anything

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        os.environ[QUEUE_ENV] = encode_handle(self.queue)  # spawned ranks inherit MPIGROUP_* variables
        os.environ["MPIGROUP_TELEMETRY_LEVEL"] = str(self.level)
        self.store.write_meta(level=self.level, start=time.time(), end=None, url=self.url,
                              head=self.node, interval=self.interval, pid=os.getpid())
        self._start_aggregator()
        if self.level >= 2:
            self._start_monitors()

    def _start_aggregator(self) -> None:
        self._thread = threading.Thread(target=self._aggregate, name="mpigroup-telemetry", daemon=True)
        self._thread.start()

    def _start_monitors(self) -> None:
        from ..group import ProcessGroup, ProcessTemplate  # loads MPI: only at level >= 2

        group = ProcessGroup(name="telemetry", ignore_error_on_exit=True)
        # Monitors report through head requests, not the shared Queue: one call
        # per interval, and it works from every host (a monitor on another host
        # reaches the head through its node agent).
        sink, stop = HeadSink(), HeadStopFlag()
        for policy in System().hostname_policies():
            group.add_process(1, ProcessTemplate(run_monitor, args=(sink, stop, self.level, self.interval,
                                                                   policy.host_name),
                                                 policy=policy))
        group.start()
        self._monitors = group

    def stop_monitors(self, timeout: float = 10.0) -> None:
        """Ask the node monitors to stop and wait for them (killed after ``timeout``)."""
        group, self._monitors = self._monitors, None
        if group is None:
            return
        self.stop_monitors_event.set()
        try:
            group.join(timeout=timeout + self.interval)
        except TimeoutError:
            group.stop(patience=2.0)
        finally:
            try:
                group.close()
            except Exception:
                pass

    def stop(self, urgent: bool = False) -> None:
        """Stop monitors, drain what is left into the store, close the store and the endpoint."""
        if not urgent:
            self.stop_monitors()
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if not urgent and self.failure is None:
            self._drain_all()
        self.server.shutdown()
        self.server.server_close()
        try:
            self.store.write_meta(end=time.time(), samples=self.stored, nodes=self.store.nodes())
        finally:
            self.store.close()
        os.environ.pop(QUEUE_ENV, None)

    # ------------------------------------------------------------ samples
    def local_put(self, sample: tuple) -> None:
        """The head's own ``add_data``: no queue hop (collections.deque is thread-safe).

        Raises :class:`TelemetryError` once the aggregator has stopped on an error.
        """
        if self.failure is not None:
            raise TelemetryError(f"telemetry: the head's aggregator stopped on {self.failure!r}, so no more "
                                 f"samples are stored (the log has its traceback); data so far is in "
                                 f"{getattr(self, 'run_dir', 'the run store')}")
        self._local.append(sample)

    def monitors_stopping(self) -> bool:
        return self.stop_monitors_event.is_set() or self._halt.is_set()

    def latest(self) -> dict:
        return dict(self._latest)

    def ingest(self, samples: list) -> None:
        """Store a batch; a malformed sample costs only itself, never the batch."""
        if not samples:
            return
        good = write_batch(self.store, samples, self._drop)
        self.stored += len(good)
        samples = good
        latest = self._latest
        for ts, node, metric, value, tags in samples:
            key = (metric, tuple(sorted({**tags, "node": node}.items())))
            old = latest.get(key)
            if old is None or ts >= old[0]:
                latest[key] = (ts, value)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        if not self._drop_warned:
            self._drop_warned = True
            log.warning("telemetry: dropped %d sample(s): %s (further drops are only counted)", count, why)

    def _take(self, limit: int = 10000) -> list:
        batch: list = []
        while self._local and len(batch) < limit:
            batch.append(self._local.popleft())
        while len(batch) < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, list):
                batch.extend(item)
            else:
                batch.append(item)
        return batch

    def _drain_all(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            self.ingest(batch)

    def _aggregate(self) -> None:
        """Drain the queue into the store until halted; an error in storing ends it (see :meth:`local_put`)."""
        try:
            while not self._halt.is_set():
                batch = self._take()
                self.ingest(batch)
                try:
                    self._check_monitors()
                except Exception:  # noqa: BLE001 (a view on the monitors: keep storing)
                    log.error("telemetry: checking the node monitors failed", exc_info=True)
                if not batch:
                    self._halt.wait(DRAIN_PERIOD)
        except BaseException as exc:  # noqa: BLE001 (recorded; the head's add_data raises it)
            self.failure = exc
            log.error("telemetry: aggregator error; it stops storing samples", exc_info=True)

    def _check_monitors(self) -> None:
        """Say once if a node monitor died (its node's host series stop)."""
        group = self._monitors
        now = time.monotonic()
        if group is None or self._monitors_warned or now - self._monitors_checked < 5.0:
            return
        self._monitors_checked = now
        dead = [(puid, code) for puid, code in group.exit_status if code is not None]
        if dead and not self.stop_monitors_event.is_set():
            self._monitors_warned = True
            log.warning("telemetry: node monitor(s) exited early (puid, exit code): %s; "
                        "their nodes' host metrics stop here", dead)


# ---------------------------------------------------------------- process-wide service
_service: Optional[TelemetryService] = None


class HeadSink:
    """Where a node monitor puts its samples: the head's service, through a head request."""

    def put(self, samples: list) -> None:
        context.current().api.call("telemetry_put", samples=samples, timeout=30.0)


class HeadStopFlag:
    """Whether the head asked the monitors to stop (asked at most every 0.5 s)."""

    def __init__(self) -> None:
        self._known, self._asked = False, 0.0

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._known and now - self._asked >= 0.5:
            self._asked = now
            self._known = bool(context.current().api.call("telemetry_stopping", timeout=30.0))
        return self._known


def put_from_monitor(samples: list) -> None:
    """Head side of ``telemetry_put``: samples join the head's own."""
    service = _service
    if service is not None:
        service._local.extend(samples)


def monitors_stopping() -> bool:
    """Head side of ``telemetry_stopping``."""
    service = _service
    return service is None or service.monitors_stopping()


# the head requests node monitors make (see mpigroup.runtime.requests.register_provider)
HEAD_OPERATIONS = {
    "telemetry_put": lambda head, samples: put_from_monitor(samples),
    "telemetry_stopping": lambda head: monitors_stopping(),
}

_lock = threading.Lock()


def current() -> Optional[TelemetryService]:
    return _service


def start(level: Optional[int] = None) -> Optional[TelemetryService]:
    """Start the service on the head if telemetry is on (level > 0); returns it, or None when off."""
    global _service
    level = config.level() if level is None else level
    if level <= 0:
        return None
    with _lock:
        if _service is not None:
            return _service
        try:
            import prometheus_client  # noqa: F401
            import waitress  # noqa: F401
            if level >= 2:
                import psutil  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"telemetry level {level} needs the 'telemetry' extra "
                              f"(pip install 'mpigroup[telemetry]'): {exc}") from None
        service = TelemetryService(level, port=config.port(), address=config.bind_address(),
                                   interval=config.interval(), base=config.base_dir())
        try:
            service.start()
        except BaseException:
            service.stop(urgent=True)
            raise
        _service = service
    log.warning("telemetry level %d: %s/metrics, OpenTSDB API %s/api; data in %s", level, service.url,
                service.url, service.run_dir)
    return service


def ensure_started() -> Optional[TelemetryService]:
    return _service if _service is not None else start()


def stop(urgent: bool = False, timeout: float = 30.0) -> bool:
    """Head shutdown: stop the service if it runs (safe to call twice); False if it did not finish.

    The stop runs on a helper thread, bounded by ``timeout``: setting the monitors' stop Event
    needs the shared-object lock, which a stuck universe step (a newcomer that died before it
    connected, docs/architecture.md "Known gaps") holds for good. The head's shutdown then goes
    on; the monitors are terminated with every other process, and the samples already written
    stay in the store.
    """
    global _service
    with _lock:
        service, _service = _service, None
    if service is None:
        return True
    failure: list = []

    def run() -> None:
        try:
            service.stop(urgent=urgent)
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)

    helper = threading.Thread(target=run, name="mpigroup-telemetry-stop", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        log.warning("telemetry: could not stop within %.0f s (a shared-object step is stuck); "
                    "the store in %s keeps what was written so far", timeout, service.run_dir)
        return False
    if failure:
        raise failure[0]
    return True


# the head's shutdown stops the service first (see mpigroup.runtime.context.shutdown_head)
shutdown.register(Stage.TELEMETRY, "mpigroup.telemetry", lambda urgent=False: stop(urgent=urgent))
