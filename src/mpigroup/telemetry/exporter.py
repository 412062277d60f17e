"""The head's HTTP endpoint: Prometheus ``/metrics`` and the OpenTSDB ``/api/*`` on one port.

``/metrics`` is built by prometheus-client from a custom collector over the
newest value of every series (a gauge per metric, ``mpigroup_`` prefix,
labels ``node``, ``device`` for GPUs and the user's tags). ``/api/*`` is
evaluated by :mod:`.opentsdb` over the run's SQLite store, which is what
Grafana's OpenTSDB data source queries. The server binds to 127.0.0.1 unless
``MPIGROUP_TELEMETRY_ADDR`` says otherwise.

Any local user can reach a loopback port, so the endpoint bounds what one
client can cost the user's head process. It is a WSGI application
(:class:`EndpointApp`) served by waitress, which enforces the limits below:
a fixed pool of :data:`THREADS` worker threads (connections are multiplexed
on one more thread, not one thread each), at most :data:`CONNECTION_LIMIT`
open connections, idle or half-sent connections closed after
:data:`IDLE_TIMEOUT` seconds, request bodies over :data:`MAX_BODY` bytes
answered 413 and malformed requests (``Content-Length: -1``) 400, all without
reading them whole. The application adds: a cap on the points of one query
(``MPIGROUP_TELEMETRY_MAX_POINTS``, see :mod:`.opentsdb`), a 400 with a JSON
error for every malformed query, and no ``Access-Control-Allow-Origin``
unless ``MPIGROUP_TELEMETRY_CORS_ORIGIN`` names the one origin allowed. On a
loopback address it also answers only requests whose ``Host`` is a loopback
name, so a web page cannot read it through DNS rebinding either.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
import threading
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qs

from . import config, naming, opentsdb

__all__ = ["LatestCollector", "EndpointApp", "TelemetryServer", "start_server", "THREADS", "CONNECTION_LIMIT",
           "IDLE_TIMEOUT", "MAX_BODY"]

log = logging.getLogger(__name__)

THREADS = 4              # requests evaluated at once; more wait in waitress's task queue
CONNECTION_LIMIT = 100   # open connections; more wait in the kernel's listen backlog
IDLE_TIMEOUT = 30        # seconds an idle or half-sent connection is kept open
MAX_BODY = 1 << 20       # bytes of a request body; a larger one is answered 413 unread
MAX_HEADER = 64 << 10    # bytes of a request line plus headers (a GET query string included)
STOP_TIMEOUT = 5.0       # seconds a stop waits for a request being evaluated (the worker threads are daemons)

_HELP = {name: text for name, _unit, text in naming.HOST_METRICS + naming.GPU_METRICS}
_INDEX = ("mpigroup telemetry: /metrics (Prometheus), /api/query /api/suggest "
          "/api/search/lookup /api/query/last (OpenTSDB)\n").encode()
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"})
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 500: "Internal Server Error"}


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


class EndpointApp:
    """The endpoint as a WSGI application over ``service.latest`` and ``service.store``.

    ``max_points`` caps one query's answer; ``cors_origin`` ("" for none) is the one origin a browser
    may read the answers from; ``hosts`` (None: any) are the names a request's ``Host`` may give. Every failure is an HTTP answer: 400 for a malformed request, 500 (one
    log line; its traceback at debug level) for a failure of the endpoint itself.
    """

    def __init__(self, service: Any, *, max_points: int, cors_origin: str = "",
                 hosts: Optional[frozenset] = None) -> None:
        from prometheus_client import CollectorRegistry, make_wsgi_app  # third-party: the telemetry extra

        registry = CollectorRegistry(auto_describe=False)
        registry.register(LatestCollector(service.latest))
        self._metrics = make_wsgi_app(registry)
        self._service = service
        self.max_points = max_points
        self.cors_origin = cors_origin
        self.hosts = hosts

    def _headers(self, ctype: Optional[str], length: int) -> list[tuple[str, str]]:
        headers = [("Content-Length", str(length))]
        if ctype:
            headers.append(("Content-Type", ctype))
        if self.cors_origin:
            headers += [("Access-Control-Allow-Origin", self.cors_origin), ("Vary", "Origin")]
        return headers

    def _reply(self, start_response: Callable, status: int, body: bytes, ctype: Optional[str],
               extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
        start_response(f"{status} {_REASONS.get(status, '')}".rstrip(), self._headers(ctype, len(body)) +
                       list(extra), sys.exc_info() if status == 500 else None)
        return [body]

    def _json(self, start_response: Callable, status: int, payload: Any) -> list[bytes]:
        return self._reply(start_response, status, json.dumps(payload).encode(), "application/json")

    def _error(self, start_response: Callable, status: int, message: str) -> list[bytes]:
        return self._json(start_response, status, {"error": {"code": status, "message": message}})

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/") or "/"
        try:
            return self._route(environ, start_response, method, path)
        except Exception as exc:  # noqa: BLE001 (a request must not print on the user's stderr)
            log.warning("telemetry: the endpoint failed to answer %s %s: %r", method, path, exc)
            log.debug("telemetry: the endpoint's failure", exc_info=True)
            return self._error(start_response, 500, f"the endpoint failed: {exc!r}")

    def _route(self, environ: dict, start_response: Callable, method: str, path: str) -> Iterable[bytes]:
        host = _host_name(environ.get("HTTP_HOST", ""))
        if self.hosts is not None and host and host not in self.hosts:
            log.debug("telemetry: 403 for Host %r", host)
            return self._error(start_response, 403, f"Host {host!r} is not this loopback endpoint's")
        if method == "OPTIONS":  # a browser's preflight: answered, but it grants only the configured origin
            return self._reply(start_response, 204, b"", None, [
                ("Allow", "GET, POST, OPTIONS"), ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Content-Type"), ("Access-Control-Max-Age", "600")])
        if method not in ("GET", "POST"):
            return self._reply(start_response, 405, b"", None, [("Allow", "GET, POST, OPTIONS")])
        if method == "GET" and path == "/metrics":
            def add_cors(status: str, headers: list, exc_info: Any = None) -> Any:
                extra = [h for h in self._headers(None, 0) if h[0] != "Content-Length"]
                return start_response(status, list(headers) + extra, exc_info)
            return self._metrics(environ, add_cors)
        if method == "GET" and path == "/":
            return self._reply(start_response, 200, _INDEX, "text/plain; charset=utf-8")
        body = None
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return self._error(start_response, 400, "bad Content-Length")
            if length < 0:
                return self._error(start_response, 400, "bad Content-Length")
            if length > MAX_BODY:  # waitress refuses it first; kept for other WSGI servers
                return self._error(start_response, 413, f"the body is larger than {MAX_BODY} bytes")
            body = environ["wsgi.input"].read(length)
        params = parse_qs(environ.get("QUERY_STRING", ""))
        status, payload = opentsdb.handle(self._service.store, method, path, params, body,
                                          max_points=self.max_points)
        if status == 400:
            log.debug("telemetry: 400 for %s %s: %s", method, path, payload["error"]["message"])
        return self._json(start_response, status, payload)


class TelemetryServer:
    """waitress serving an :class:`EndpointApp` on its own thread; :meth:`shutdown` leaves no thread behind.

    Keeps the names the service uses from :mod:`socketserver` (``server_address``, ``shutdown``,
    ``server_close``).
    """

    def __init__(self, app: Callable, address: str, port: int, *, threads: int = THREADS,
                 connection_limit: int = CONNECTION_LIMIT, idle_timeout: int = IDLE_TIMEOUT,
                 max_body: int = MAX_BODY) -> None:
        from waitress.server import create_server  # third-party: the telemetry extra

        quiet = logging.getLogger("waitress")
        if quiet.level == logging.NOTSET:  # its warnings (queue depth, connection limit) are a client's doing
            quiet.setLevel(logging.ERROR)
        listener = _bind(address, port)  # here, not in waitress: a busy port must leave no thread behind
        self._map: dict = {}
        self._server = create_server(
            app, map=self._map, sockets=[listener], threads=threads, connection_limit=connection_limit,
            channel_timeout=idle_timeout, cleanup_interval=max(1, idle_timeout // 2),
            max_request_body_size=max_body, max_request_header_size=MAX_HEADER, ident="mpigroup-telemetry",
            expose_tracebacks=False, log_socket_errors=False, asyncore_use_poll=True,
            clear_untrusted_proxy_headers=False)
        self.server_address = listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="mpigroup-telemetry-http", daemon=True)

    def start(self) -> threading.Thread:
        self._thread.start()
        return self._thread

    def _serve(self) -> None:
        from waitress import wasyncore

        try:
            while not self._stopping.is_set() and self._map:
                wasyncore.loop(timeout=0.5, use_poll=True, map=self._map, count=1)
        except Exception:  # noqa: BLE001 (logged; the run goes on without its endpoint)
            log.error("telemetry: the endpoint stopped on an error", exc_info=True)
        finally:
            self._close()

    def _close(self) -> None:
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT)
        wasyncore.close_all(self._map)

    def shutdown(self) -> None:
        """Stop serving: the loop thread closes every connection and the worker threads end."""
        self._stopping.set()
        for dispatcher in list(self._map.values()):
            if hasattr(dispatcher, "pull_trigger"):
                try:
                    dispatcher.pull_trigger()  # wakes the loop's poll() now rather than at its timeout
                except OSError:
                    pass  # already closed: the loop has ended
                break
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT + 5.0)

    def server_close(self) -> None:
        """Stop serving if it still does, and release the sockets (safe to call twice)."""
        if self._thread.is_alive():
            self.shutdown()
        if not self._thread.is_alive():
            self._close()


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8000`` -> ``::1``."""
    name = header.strip().lower()
    if name.startswith("["):
        return name[1:name.find("]")] if "]" in name else name
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def _loopback_hosts(address: str, bound: str) -> Optional[frozenset]:
    """The Host names an endpoint bound to ``bound`` answers: loopback ones, or None (any) elsewhere."""
    try:
        if not ipaddress.ip_address(bound.split("%", 1)[0]).is_loopback:
            return None
    except ValueError:
        return None
    return _LOOPBACK_NAMES | {address.lower(), bound}


def _bind(address: str, port: int) -> socket.socket:
    """A TCP socket bound to (address, port), the first address ``address`` resolves to."""
    family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socketserver: no TIME_WAIT wait
        listener.bind(where)
    except BaseException:
        listener.close()
        raise
    return listener


def start_server(service: Any, address: str, port: int,
                 **limits: Any) -> tuple[TelemetryServer, threading.Thread]:
    """Bind and serve on a daemon thread; a busy port raises ``OSError`` naming the setting to change.

    ``limits`` override :class:`TelemetryServer`'s (``threads``, ``connection_limit``, ``idle_timeout``,
    ``max_body``); the point cap and the CORS origin come from the settings. On a loopback address only
    loopback ``Host`` names are answered.
    """
    app = EndpointApp(service, max_points=config.max_points(), cors_origin=config.cors_origin())
    try:
        server = TelemetryServer(app, address, port, **limits)
    except OSError as exc:
        raise OSError(exc.errno, f"telemetry endpoint cannot listen on {address}:{port} ({exc.strerror}); "
                      "choose another port with --telemetry-port or MPIGROUP_TELEMETRY_PORT (0: any free port)"
                      ) from None
    app.hosts = _loopback_hosts(address, server.server_address[0])  # DNS rebinding: a page's Host is its own
    return server, server.start()
