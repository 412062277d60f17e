"""The head's HTTP endpoint: Prometheus ``/metrics`` and the OpenTSDB ``/api/*`` on one port.

``/metrics`` is built by prometheus-client from a custom collector over the
newest value of every series (a gauge per metric, ``mpigroup_`` prefix,
labels ``node``, ``device`` for GPUs and the user's tags). ``/api/*`` is
evaluated by :mod:`.opentsdb` over the run's SQLite store, which is what
Grafana's OpenTSDB data source queries. The server binds to 127.0.0.1 unless
``MPIGROUP_TELEMETRY_ADDR`` says otherwise.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from . import naming, opentsdb

__all__ = ["LatestCollector", "TelemetryHTTPServer", "start_server"]

log = logging.getLogger(__name__)

_HELP = {name: text for name, _unit, text in naming.HOST_METRICS + naming.GPU_METRICS}


class LatestCollector:
    """prometheus-client collector over ``latest() -> {(metric, tags tuple): (ts, value)}``."""

    def __init__(self, latest: Callable[[], dict]) -> None:
        self._latest = latest

    def describe(self) -> list:
        return []  # unchecked collector: the families change as series appear

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily  # third-party: only where the endpoint runs

        by_metric: dict[str, list] = {}
        for (metric, tags), (ts, value) in sorted(self._latest().items()):
            by_metric.setdefault(metric, []).append((dict(tags), ts, value))
        for metric, rows in by_metric.items():
            keys = sorted({k for tags, _, _ in rows for k in tags} - {"node"})
            labels = ["node"] + [naming.label_name(k) for k in keys]
            family = GaugeMetricFamily(naming.prometheus_name(metric),
                                       _HELP.get(metric, f"user metric {metric} (Telemetry.add_data)"),
                                       labels=labels)
            for tags, ts, value in rows:
                family.add_metric([tags.get("node", "")] + [tags.get(k, "") for k in keys], value)
            yield family


def _handler(service: Any) -> type:
    # third-party (the telemetry extra): loaded only when a head starts its endpoint
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LatestCollector(service.latest))

    class Handler(BaseHTTPRequestHandler):
        server_version = "mpigroup-telemetry"

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            if method == "GET" and path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            if method == "GET" and path == "/":
                text = ("mpigroup telemetry: /metrics (Prometheus), /api/query /api/suggest "
                        "/api/search/lookup /api/query/last (OpenTSDB)\n")
                self._send(200, text.encode(), "text/plain; charset=utf-8")
                return
            body = None
            if method == "POST":
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = opentsdb.handle(service.store, method, path, parse_qs(url.query), body)
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise
            pass

    return Handler


class TelemetryHTTPServer(ThreadingHTTPServer):
    """The endpoint's server: one daemon thread per request; a failed request is logged, not printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("telemetry: the endpoint failed to answer a request from %s", client_address[0]
                  if isinstance(client_address, tuple) else client_address, exc_info=True)


def start_server(service: Any, address: str, port: int) -> tuple[TelemetryHTTPServer, threading.Thread]:
    """Bind and serve on a daemon thread; a busy port raises ``OSError`` naming the setting to change."""
    try:
        server = TelemetryHTTPServer((address, port), _handler(service))
    except OSError as exc:
        raise OSError(exc.errno, f"telemetry endpoint cannot listen on {address}:{port} ({exc.strerror}); "
                      "choose another port with --telemetry-port or MPIGROUP_TELEMETRY_PORT (0: any free port)"
                      ) from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              name="mpigroup-telemetry-http", daemon=True)
    thread.start()
    return server, thread
