"""The telemetry endpoint's limits (issue 15 item 3), against a real server on 127.0.0.1, without MPI.

Each test starts the head's endpoint (exporter.start_server, waitress) in this process over a real
run store, talks to it with bounded loops over sockets that all have a timeout, and checks what a
local client can cost the head: points per query, body size, threads, idle connections, malformed
requests, CORS. The server is stopped at the end of each test and must leave no thread behind.
"""
import http.client
import json
import logging
import os
import socket
import threading
import time

import pytest
import prometheus_client  # noqa: F401  (the test extra installs both: missing is a failure, not a skip)
import waitress  # noqa: F401

from mpigroup.telemetry import exporter
from mpigroup.telemetry.runstore import RunStore

TIMEOUT = 60  # seconds any one socket operation may take; a stalled server fails the test, it never hangs
SERVER_THREADS = ("waitress-", "mpigroup-telemetry-http")


class _Service:
    """What the endpoint reads from the head's service: its store and the newest values."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def latest(self) -> dict:
        return {("system_load_average", (("node", "n1"),)): (time.time(), 1.5)}


def _server_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith(SERVER_THREADS)]


def _no_server_threads_left() -> bool:
    """After a stop: every server thread ends (a worker may still be on its way out; it gets 60 s)."""
    deadline = time.monotonic() + TIMEOUT
    while _server_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    return _server_threads() == []


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """``serve(**limits) -> (host, port)``: an endpoint over a store with 10 minutes of two series."""
    monkeypatch.delenv("MPIGROUP_TELEMETRY_MAX_POINTS", raising=False)  # the defaults, whatever the caller's
    monkeypatch.delenv("MPIGROUP_TELEMETRY_CORS_ORIGIN", raising=False)
    store = RunStore(str(tmp_path), readonly=False)
    now = time.time()
    store.write([(now - 600 + i, node, "system_load_average", float(i), {}) for i in range(600)
                 for node in ("n1", "n2")])
    servers = []

    def start(**limits):
        server, _thread = exporter.start_server(_Service(store), "127.0.0.1", 0, **limits)
        servers.append(server)
        return server.server_address

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    store.close()
    assert _no_server_threads_left(), "the endpoint left threads behind"


def _request(address, method, path, body=None, headers=None):
    """One request on a fresh connection -> (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection(*address, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def _raw(address, data: bytes) -> bytes:
    """Send bytes as they are; read the answer until the server closes or a full answer arrived."""
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _quiet(capfd, caplog):
    """Nothing on stderr and no warning logged: a client's mistake is the client's business."""
    assert "Traceback" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# ------------------------------------------------------------------ points per query
def test_a_query_that_would_fill_a_year_at_1ms_is_refused_before_any_work(serve, capfd, caplog):
    address = serve()
    status, _, body = _request(address, "GET", "/api/query?start=1y-ago&m=sum:1ms-sum-zero:system_load_average")
    assert status == 400
    message = json.loads(body)["error"]["message"]
    assert "MPIGROUP_TELEMETRY_MAX_POINTS" in message and "100000" in message
    query = {"start": "1y-ago", "queries": [{"metric": "system_load_average", "aggregator": "avg",
                                             "downsample": "1ms-avg-nan"}]}
    status, _, body = _request(address, "POST", "/api/query", json.dumps(query).encode())
    assert status == 400 and "MPIGROUP_TELEMETRY_MAX_POINTS" in json.loads(body)["error"]["message"]
    # a normal Grafana query still works: 11 one-minute buckets, filled
    status, _, body = _request(address, "GET", "/api/query?start=10m-ago&m=sum:1m-avg-zero:system_load_average")
    assert status == 200 and 10 <= len(json.loads(body)[0]["dps"]) <= 12
    _quiet(capfd, caplog)


def test_the_point_cap_is_a_setting_and_counts_raw_points_too(serve, monkeypatch):
    monkeypatch.setenv("MPIGROUP_TELEMETRY_MAX_POINTS", "100")
    address = serve()
    status, _, body = _request(address, "GET", "/api/query?start=1h-ago&m=avg:1m-avg-zero:system_load_average")
    assert status == 200  # 61 points
    for path in ("/api/query?start=1h-ago&m=avg:10s-avg-zero:system_load_average",  # 361 filled points
                 "/api/query?start=1h-ago&m=none:system_load_average"):  # 1200 raw points in two series
        status, _, body = _request(address, "GET", path)
        assert status == 400 and "more than 100 points" in json.loads(body)["error"]["message"], body


# ------------------------------------------------------------------ request bodies
def test_a_body_over_1_mib_is_answered_413_before_it_is_sent(serve):
    address = serve()
    head = (f"POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {2 << 20}\r\n\r\n").encode()
    assert _status(_raw(address, head)) == 413  # the server did not wait for the 2 MiB


def test_chunked_bodies_over_the_cap_are_refused_and_not_kept(serve):
    address = serve()
    chunk = b"x" * (64 << 10)
    rss_before = _rss()
    answers = []
    for _ in range(16):  # 16 bodies of 2 MiB each, chunked: the server sees the size only as it reads
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /api/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(32):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                answers.append(sock.recv(65536))
            except ConnectionResetError:  # it answered 413 and closed with our bytes unread: a reset here
                answers.append(b"reset")
    assert all(a == b"reset" or _status(a) == 413 for a in answers), answers
    assert _rss() - rss_before < (24 << 20)  # 32 MiB were offered; none of it is held
    assert _request(address, "GET", "/api/version")[0] == 200


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ malformed requests
@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3", b"5, 5"])
def test_a_bad_content_length_is_answered_400(serve, length, capfd, caplog):
    address = serve()
    answer = _raw(address, b"POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
    assert _status(answer) == 400
    _quiet(capfd, caplog)


@pytest.mark.parametrize("path,body", [
    ("/api/query/last", b"[]"),
    ("/api/query/last", b'{"queries": [1]}'),
    ("/api/query/last", b'{"queries": [{"metric": 3}]}'),
    ("/api/query/last", b'{"queries": [], "backScan": NaN}'),
    ("/api/query/last", b'{"queries": [], "backScan": "x"}'),
    ("/api/query", b"[]"),
    ("/api/query", b"\xff\xfe"),
    ("/api/query", b"[" * 100000),
    ("/api/query", b'{"start": Infinity, "queries": [{"metric": "m"}]}'),
    ("/api/query", b'{"start": 1e400, "queries": [{"metric": "m"}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "filters": [{"type": "wildcard"}]}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "filters": [1]}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "filters": "x"}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "tags": ["a"]}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "downsample": 60}]}'),
    ("/api/query", b'{"start": "1h-ago", "queries": [{"metric": "m", "aggregator": []}]}'),
    ("/api/query", json.dumps({"start": "1h-ago",
                               "queries": [{"metric": "m", "downsample": "9" * 400 + "y-avg"}]}).encode()),
])
def test_malformed_requests_are_answered_400_with_a_json_error(serve, path, body, capfd, caplog):
    address = serve()
    status, headers, answer = _request(address, "POST", path, body, {"Content-Type": "application/json"})
    assert status == 400, answer
    assert headers["content-type"] == "application/json" and json.loads(answer)["error"]["code"] == 400
    _quiet(capfd, caplog)


# ------------------------------------------------------------------ connections and threads
def test_idle_connections_hold_no_thread_and_are_closed(serve):
    threads_before = len(threading.enumerate())
    address = serve(connection_limit=100, idle_timeout=1)  # the rest wait in the backlog until idle ones close
    server_threads = len(_server_threads())
    assert 1 <= server_threads <= 8  # a few workers and the one connection loop (4 + 1 today)
    idle = []
    try:
        for index in range(200):
            sock = socket.create_connection(address, timeout=TIMEOUT)
            if index % 2:
                sock.sendall(b"POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # half-sent
            idle.append(sock)
        assert len(threading.enumerate()) <= threads_before + server_threads  # none per connection
        status, _, _ = _request(address, "GET", "/api/version")  # answered once idle ones are closed
        assert status == 200
        assert idle[0].recv(1) == b""  # the server closed the first idle connection itself
        assert idle[1].recv(65536) == b""  # and a half-sent one, without an answer
    finally:
        for sock in idle:
            sock.close()
    assert len(threading.enumerate()) <= threads_before + server_threads


def test_stopping_with_open_connections_closes_them_and_leaves_no_thread(tmp_path):
    server, thread = exporter.start_server(_Service(RunStore(str(tmp_path), readonly=False)), "127.0.0.1", 0)
    address = server.server_address
    idle = [socket.create_connection(address, timeout=TIMEOUT) for _ in range(10)]
    idle[0].sendall(b"GET /api/version HTTP/1.1\r\nHost: x\r\n")  # half-sent
    try:
        assert _request(address, "GET", "/api/aggregators")[0] == 200
        server.shutdown()
        server.server_close()
        assert not thread.is_alive() and _no_server_threads_left()
        assert [sock.recv(1) for sock in idle] == [b""] * len(idle)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=TIMEOUT).close()
    finally:
        for sock in idle:
            sock.close()


# ------------------------------------------------------------------ CORS
def test_no_cross_origin_header_by_default(serve):
    address = serve()
    for method, path in (("GET", "/metrics"), ("GET", "/api/version"), ("OPTIONS", "/api/query"),
                         ("GET", "/api/query?start=bad&m=sum:x")):
        status, headers, _ = _request(address, method, path, headers={"Origin": "http://evil.example"})
        assert status in (200, 204, 400) and "access-control-allow-origin" not in headers, (path, headers)


def test_the_configured_origin_only(serve, monkeypatch):
    monkeypatch.setenv("MPIGROUP_TELEMETRY_CORS_ORIGIN", "http://127.0.0.1:3000")
    address = serve()
    for method, path in (("GET", "/metrics"), ("GET", "/api/version"), ("OPTIONS", "/api/query")):
        status, headers, body = _request(address, method, path, headers={"Origin": "http://127.0.0.1:3000"})
        assert headers["access-control-allow-origin"] == "http://127.0.0.1:3000", (path, headers)
    status, _, body = _request(address, "GET", "/metrics")
    assert status == 200 and b'mpigroup_system_load_average{node="n1"} 1.5' in body


def test_a_busy_port_names_the_setting(serve):
    host, port = serve()
    with pytest.raises(OSError, match="MPIGROUP_TELEMETRY_PORT"):
        exporter.start_server(_Service(None), host, port)


def test_a_loopback_endpoint_answers_only_loopback_host_names(serve):
    """A web page that rebinds its own name to 127.0.0.1 still sends its name as Host: refused."""
    address = serve()
    for host in ("evil.example", "evil.example:%d" % address[1], "10.1.2.3"):
        status, headers, body = _request(address, "GET", "/metrics", headers={"Host": host})
        assert status == 403 and b"mpigroup_" not in body, host
    for host in ("127.0.0.1:%d" % address[1], "localhost:%d" % address[1], "[::1]:%d" % address[1], "localhost"):
        assert _request(address, "GET", "/api/version", headers={"Host": host})[0] == 200, host
