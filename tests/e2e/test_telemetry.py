"""Telemetry end to end: real runs under `python -m mpigroup`, real HTTP against the head's endpoint."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

from helpers import copy_script, run_mpigroup, wait_no_processes

from mpigroup.telemetry.runstore import RunStore


def _env(tmp_path, level, **extra):
    env = dict(os.environ)
    env.update({"MPIGROUP_TELEMETRY_LEVEL": str(level), "MPIGROUP_TELEMETRY_PORT": "0",
                "MPIGROUP_TELEMETRY_DIR": str(tmp_path / "runs"), "MPIGROUP_TELEMETRY_INTERVAL": "0.5",
                "MPIGROUP_TEST_TAG": uuid.uuid4().hex})
    env.update(extra)
    return env


def _get(url, data=None):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.read().decode()


def _read_until(stream, pattern, timeout=60):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match, seen
    raise AssertionError(f"{pattern!r} not seen in: {''.join(seen)}")


def _check_limits_in_the_head(url, run_dir):
    """Issue 15 item 3 on a real head: bounded work per query, no thread per connection, no CORS."""
    try:
        _get(url + "/api/query?start=1y-ago&m=sum:1ms-sum-zero:system_load_average")
        raise AssertionError("a year at 1 ms must answer 400")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400 and "MPIGROUP_TELEMETRY_MAX_POINTS" in json.loads(exc.read())["error"]["message"]
    with open(os.path.join(run_dir, "run.json")) as f:
        head = json.load(f)["pid"]
    threads = len(os.listdir(f"/proc/{head}/task"))
    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), timeout=30) for _ in range(60)]
    try:
        with urllib.request.urlopen(url + "/api/version", timeout=30) as reply:
            assert reply.status == 200 and "Access-Control-Allow-Origin" not in reply.headers
        assert len(os.listdir(f"/proc/{head}/task")) < threads + 10  # 60 connections, no thread each
    finally:
        for sock in idle:
            sock.close()


def test_live_endpoint_prometheus_opentsdb_top_and_store(tmp_path):
    script = copy_script(tmp_path, "telemetry_live.py")
    env = _env(tmp_path, 2)
    proc = subprocess.Popen([sys.executable, "-m", "mpigroup", str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        match, _ = _read_until(proc.stderr, r"telemetry level 2: (http://127\.0\.0\.1:\d+)/metrics.*data in (\S+)")
        url, run_dir = match.group(1), match.group(2)
        _read_until(proc.stdout, "WORK-DONE")
        # host samples arrive every 0.5 s; wait until the endpoint has a few
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, text = _get(url + "/metrics")
            if text.count("mpigroup_system_load_average{") and "mpigroup_work_items" in text:
                break
            time.sleep(0.3)
        assert status == 200
        node = os.uname().nodename
        assert f'mpigroup_system_load_average{{node="{node}"}}' in text
        for name in ("cpu_percent", "memory_used", "memory_total", "cpu_count"):
            assert f'mpigroup_{name}{{node="{node}"}}' in text
        assert f'mpigroup_work_items{{node="{node}",worker="3"}} 32.0' in text
        assert f'mpigroup_head_metric{{node="{node}"}} 42.0' in text
        assert "too_detailed" not in text and "gpu_" not in text  # level 2: no GPU series
        # OpenTSDB query as Grafana sends it (POST, ms timestamps, filters)
        body = {"start": int((time.time() - 3600) * 1000), "end": int((time.time() + 60) * 1000),
                "queries": [{"metric": "work_items", "aggregator": "max",
                             "filters": [{"type": "wildcard", "tagk": "worker", "filter": "*", "groupBy": True}]}]}
        status, text = _get(url + "/api/query", json.dumps(body).encode())
        answer = json.loads(text)
        assert status == 200
        assert sorted((r["tags"]["worker"], max(r["dps"].values())) for r in answer) == \
            [("0", 2.0), ("1", 12.0), ("2", 22.0), ("3", 32.0)]
        status, text = _get(url + "/api/suggest?type=metrics&q=sys")
        assert json.loads(text) == ["system_load_average"]
        status, text = _get(url + "/api/query?start=1h-ago&m=avg:1m-avg:system_load_average")
        assert json.loads(text)[0]["dps"]
        try:
            _get(url + "/api/query", b'{"queries": []}')
            raise AssertionError("a bad query must answer 400")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and "start" in json.loads(exc.read())["error"]["message"]
        _check_limits_in_the_head(url, run_dir)
        # mpigroup top draws one frame of bars from the live endpoint
        top = subprocess.run([sys.executable, "-m", "mpigroup.launcher.cli", "top", "--url", url, "--once"],
                             capture_output=True, text=True, timeout=60)
        assert top.returncode == 0, top.stderr
        assert re.search(rf"{node} cpu load average 1 min: +[\d.]+ on \d+ CPUs", top.stdout), top.stdout
        # the store must hold two host samples before the run ends (0.5 s apart; a slow machine
        # may need longer than the queries above took)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live = RunStore(run_dir)
            try:
                series = live.query("system_load_average")
                if series and len(series[0].points) >= 2:
                    break
            finally:
                live.close()
            time.sleep(0.2)
    finally:
        (tmp_path / "release").touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not wait_no_processes(env["MPIGROUP_TEST_TAG"])
    # after the run: the store holds every series, readable by anyone
    run = RunStore(run_dir)
    assert run.nodes() == [node]
    assert set(run.metrics()) == {"cpu_count", "cpu_percent", "head_metric", "memory_total", "memory_used",
                                  "system_load_average", "work_items"}
    assert len(run.query("system_load_average")[0].points) >= 2
    head = run.query("head_metric")[0]
    assert head.points == [(1_700_000_000.5, 42.0)] and head.tags == {"node": node}
    assert sorted(len(s.points) for s in run.query("work_items")) == [3, 3, 3, 3]
    meta = run.meta()
    assert meta["level"] == 2 and meta["end"] >= meta["start"] and meta["nodes"] == [node]
    run.close()
    # and the CLI reads and draws it
    show = subprocess.run([sys.executable, "-m", "mpigroup.launcher.cli", "telemetry", "show", run_dir],
                          capture_output=True, text=True, timeout=60)
    assert show.returncode == 0 and "work_items{node=" in show.stdout
    png = tmp_path / "out.png"
    plot = subprocess.run([sys.executable, "-m", "mpigroup.launcher.cli", "telemetry", "plot", run_dir,
                           "-o", str(png), "--metric", "system_load_average", "--metric", "work_items"],
                          capture_output=True, text=True, timeout=120)
    assert plot.returncode == 0, plot.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "2 panels" in plot.stdout


def test_level3_without_nvml_reports_no_gpu_series_and_logs_once(tmp_path):
    """This machine has no NVIDIA GPU: level 3 must run, log once per node, and store no GPU series."""
    script = copy_script(tmp_path, "telemetry_gpu_level3.py")
    proc = run_mpigroup(script, env=_env(tmp_path, 3), timeout=120)
    assert proc.returncode == 0, proc.stderr
    if "SAMPLERS 0 1" not in proc.stdout:
        raise AssertionError(f"this test expects a machine without NVML; got {proc.stdout}")
    assert proc.stderr.count("no GPU metrics") == 1, proc.stderr
    run_dir = re.search(r"data in (\S+)", proc.stderr).group(1)
    run = RunStore(run_dir)
    assert "system_load_average" in run.metrics() and "level3_user" in run.metrics()
    assert not [m for m in run.metrics() if m.startswith("gpu_")]


def test_level0_is_off_and_creates_nothing(tmp_path):
    script = copy_script(tmp_path, "telemetry_off.py")
    proc = run_mpigroup(script, env=_env(tmp_path, 0), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WORKERS-LIGHT True" in proc.stdout and "HEAD-LIGHT True 0" in proc.stdout
    assert "telemetry" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_level1_user_metrics_only_and_bad_input(tmp_path):
    script = copy_script(tmp_path, "telemetry_level1.py")
    proc = run_mpigroup(script, env=_env(tmp_path, 1), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("REJECTED") == 4 and "AFTER-SHUTDOWN" in proc.stdout
    run = RunStore(re.search(r"data in (\S+)", proc.stderr).group(1))
    assert run.metrics() == ["kept"]  # no host metrics at level 1, the level-2 sample dropped
    assert [v for _, v in run.query("kept")[0].points] == [1.0]


def test_busy_port_and_bad_level_fail_clearly(tmp_path):
    import socket

    script = copy_script(tmp_path, "print_ran.py")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        proc = run_mpigroup(script, env=_env(tmp_path, 2, MPIGROUP_TELEMETRY_PORT=str(port)), timeout=120)
    assert proc.returncode != 0 and "RAN" not in proc.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--telemetry-port" in proc.stderr
    proc = run_mpigroup(script, env=_env(tmp_path, 2, MPIGROUP_TELEMETRY_LEVEL="9"), timeout=120)
    assert proc.returncode != 0 and "MPIGROUP_TELEMETRY_LEVEL='9' is not valid" in proc.stderr


def test_killed_monitor_is_reported_and_the_run_goes_on(tmp_path):
    script = copy_script(tmp_path, "telemetry_kill_monitor.py")
    env = _env(tmp_path, 2)
    proc = run_mpigroup(script, env=env, timeout=120, tag=env["MPIGROUP_TEST_TAG"])
    assert proc.returncode == 0, proc.stderr
    assert "SURVIVED" in proc.stdout
    assert "node monitor(s) exited early" in proc.stderr and ", -9)" in proc.stderr
    assert not wait_no_processes(env["MPIGROUP_TEST_TAG"])
