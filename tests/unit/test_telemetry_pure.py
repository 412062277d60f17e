"""Telemetry pieces without MPI: settings, names, the SQLite store, OpenTSDB query evaluation."""
import json
import os

import pytest

from mpigroup.telemetry import config, naming, opentsdb
from mpigroup.telemetry.runstore import RunStore, new_run_dir, resolve_run

NOW = 1_700_000_000.0


# ---------------------------------------------------------------- settings
def test_settings_defaults_and_errors():
    assert config.level({}) == 0 and config.port({}) == 8000 and config.bind_address({}) == "127.0.0.1"
    assert config.level({"MPIGROUP_TELEMETRY_LEVEL": "3"}) == 3
    assert config.port({"MPIGROUP_TELEMETRY_PORT": "0"}) == 0
    assert config.interval({"MPIGROUP_TELEMETRY_INTERVAL": "0.5"}) == 0.5
    assert config.base_dir({"MPIGROUP_TELEMETRY_DIR": "/x/y"}) == "/x/y"
    for env, word in (({"MPIGROUP_TELEMETRY_LEVEL": "high"}, "LEVEL"), ({"MPIGROUP_TELEMETRY_LEVEL": "4"}, "from 0 to 3"),
                      ({"MPIGROUP_TELEMETRY_PORT": "70000"}, "PORT"),
                      ({"MPIGROUP_TELEMETRY_INTERVAL": "0"}, "INTERVAL")):
        with pytest.raises(ValueError, match=word):
            (config.level if "LEVEL" in next(iter(env)) else
             config.port if "PORT" in next(iter(env)) else config.interval)(env)


# ------------------------------------------------------------------- names
def test_names_and_tags():
    assert naming.prometheus_name("gpu_utilization") == "mpigroup_gpu_utilization"
    assert naming.prometheus_name("req.latency/s") == "mpigroup_req_latency_s"
    assert naming.label_name("9lives") == "tag_9lives" and naming.label_name("lr") == "lr"
    assert naming.check_tags({"lr": 0.5, "worker": 3}) == {"lr": "0.5", "worker": "3"}
    with pytest.raises(ValueError, match="set by mpigroup"):
        naming.check_tags({"node": "x"})
    with pytest.raises(ValueError, match="not valid"):
        naming.check_metric_name("bad name")
    with pytest.raises(TypeError):
        naming.check_metric_name(3)
    with pytest.raises(ValueError, match="tag value"):
        naming.check_tags({"k": "a b"})


# ------------------------------------------------------------------- store
def _store(tmp_path):
    run = RunStore(str(tmp_path), readonly=False)
    samples = []
    for i in range(10):
        ts = NOW + i
        samples.append((ts, "n1", "system_load_average", 1.0 + i, {}))
        samples.append((ts + 0.3, "n2", "system_load_average", 10.0 + i, {}))
        samples.append((ts, "n1", "gpu_utilization", 10.0 * i, {"device": "0"}))
        samples.append((ts, "n1", "gpu_utilization", 5.0, {"device": "1"}))
    samples.append((NOW, "n2", "request_latency", 0.25, {"worker": "1"}))
    assert run.write(samples) == len(samples)
    run.write_meta(level=3)
    return run


def test_store_round_trip_after_close(tmp_path):
    run = _store(tmp_path)
    run.close()
    assert sorted(os.listdir(tmp_path)) == ["n1.db", "n2.db", "run.json"]  # WAL files gone
    back = RunStore(str(tmp_path))
    assert back.nodes() == ["n1", "n2"]
    assert back.metrics() == ["gpu_utilization", "request_latency", "system_load_average"]
    assert back.count() == 41
    gpu = back.query("gpu_utilization", tags={"device": "0"})
    assert len(gpu) == 1 and gpu[0].tags == {"device": "0", "node": "n1"}
    assert [v for _, v in gpu[0].points] == [10.0 * i for i in range(10)]
    window = back.query("system_load_average", start=NOW + 2, end=NOW + 4)
    assert {s.tags["node"]: [v for _, v in s.points] for s in window} == {"n1": [3.0, 4.0, 5.0], "n2": [12.0, 13.0]}
    assert back.meta()["level"] == 3
    back.close()


def test_run_dirs(tmp_path):
    first = new_run_dir(str(tmp_path), now=NOW)
    store = RunStore(first, readonly=False)
    store.write_meta(level=1)
    store.write([(NOW, "n1", "m", 1.0, {})])
    assert os.stat(first).st_mode & 0o777 == 0o700  # private, like the run directory
    assert os.stat(os.path.join(first, "n1.db")).st_mode & 0o777 == 0o600
    assert resolve_run("latest", str(tmp_path)) == first
    assert resolve_run(os.path.basename(first), str(tmp_path)) == first
    with pytest.raises(FileNotFoundError, match="no telemetry run"):
        resolve_run("nope", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no telemetry runs"):
        resolve_run("latest", str(tmp_path / "empty"))


# ---------------------------------------------------------------- opentsdb
def test_parse_time_and_downsample():
    assert opentsdb.parse_time(1_700_000_000_123) == pytest.approx(1_700_000_000.123)
    assert opentsdb.parse_time("1700000000") == 1_700_000_000
    assert opentsdb.parse_time("1h-ago", now=NOW) == NOW - 3600
    assert opentsdb.parse_time("2023/11/14-22:13:20") == 1_700_000_000
    assert opentsdb.parse_downsample("1m-avg") == (60, "avg", "none")
    assert opentsdb.parse_downsample("0all-max-zero") == (None, "max", "zero")
    for bad in ("1m", "1x-avg", "1m-frob"):
        with pytest.raises(opentsdb.BadRequest):
            opentsdb.parse_downsample(bad)
    with pytest.raises(opentsdb.BadRequest):
        opentsdb.parse_time("yesterday")


def test_query_grouping_filters_and_downsampling(tmp_path):
    run = _store(tmp_path)
    body = {"start": int(NOW * 1000), "end": int((NOW + 20) * 1000),
            "queries": [{"metric": "system_load_average", "aggregator": "sum",
                         "filters": [{"type": "wildcard", "tagk": "node", "filter": "*", "groupBy": True}]}]}
    per_node = opentsdb.query(run, body, now=NOW + 30)
    assert [r["tags"] for r in per_node] == [{"node": "n1"}, {"node": "n2"}]
    assert per_node[0]["dps"][str(int(NOW))] == 1.0 and per_node[1]["dps"][str(int(NOW) + 9)] == 19.0
    # no grouping: one series summed over nodes, node becomes an aggregate tag
    body["queries"][0]["filters"] = []
    total = opentsdb.query(run, body, now=NOW + 30)
    assert len(total) == 1 and total[0]["aggregateTags"] == ["node"] and total[0]["tags"] == {}
    assert total[0]["dps"][str(int(NOW) + 1)] == 2.0 + 11.0
    # downsample to one bucket per 5 s, max per bucket; OpenTSDB 1.x tags syntax
    body["queries"] = [{"metric": "gpu_utilization", "aggregator": "max", "downsample": "5s-max",
                        "tags": {"device": "*"}}]
    gpu = opentsdb.query(run, body, now=NOW + 30)
    assert [r["tags"]["device"] for r in gpu] == ["0", "1"]
    assert list(gpu[0]["dps"].values()) == [40.0, 90.0] and list(gpu[1]["dps"].values()) == [5.0, 5.0]
    # literal_or and not_literal_or
    body["queries"] = [{"metric": "gpu_utilization", "aggregator": "none",
                        "filters": [{"type": "not_literal_or", "tagk": "device", "filter": "0", "groupBy": False}]}]
    assert [r["tags"]["device"] for r in opentsdb.query(run, body, now=NOW + 30)] == ["1"]
    # GET form through the router, with a 400 for nonsense
    status, out = opentsdb.handle(run, "GET", "/api/query",
                                  {"start": [str(int(NOW))], "end": [str(int(NOW) + 20)],
                                   "m": ["avg:1m-avg:system_load_average{node=n2}"]}, None)
    assert status == 200 and len(out) == 1 and out[0]["tags"] == {"node": "n2"}
    assert list(out[0]["dps"].values()) == [pytest.approx(14.5)]
    status, out = opentsdb.handle(run, "POST", "/api/query", {}, b'{"start": "1h-ago", "queries": [{}]}')
    assert status == 400 and "metric" in out["error"]["message"]
    status, out = opentsdb.handle(run, "POST", "/api/query", {}, b"not json")
    assert status == 400


def test_suggest_lookup_and_last(tmp_path):
    run = _store(tmp_path)
    assert opentsdb.suggest(run, "metrics", "gpu") == ["gpu_utilization"]
    assert opentsdb.suggest(run, "tagk") == ["device", "node", "worker"]
    assert opentsdb.suggest(run, "tagv", "n") == ["n1", "n2"]
    assert opentsdb.suggest(run, "metrics", "", 1) == ["gpu_utilization"]
    found = opentsdb.lookup(run, "gpu_utilization")
    assert found["totalResults"] == 2 and {r["tags"]["device"] for r in found["results"]} == {"0", "1"}
    last = opentsdb.query_last(run, ["system_load_average"], back_seconds=3600, now=NOW + 20)
    assert {(r["tags"]["node"], r["value"]) for r in last} == {("n1", 10.0), ("n2", 19.0)}
    status, body = opentsdb.handle(run, "GET", "/api/suggest", {"type": ["bogus"]}, None)
    assert status == 400
    assert opentsdb.handle(run, "GET", "/api/aggregators", {}, None)[1].count("sum") == 1
    assert opentsdb.handle(run, "GET", "/api/nowhere", {}, None)[0] == 404
    json.dumps(opentsdb.handle(run, "GET", "/api/config/filters", {}, None)[1])


def test_one_bad_sample_costs_only_itself(tmp_path):
    from mpigroup.telemetry.runstore import write_batch

    run = RunStore(str(tmp_path), readonly=False)
    drops = []
    batch = [(NOW + i, "n1", "m", float(i), {}) for i in range(100)]
    batch[37] = (NOW, "n1", "m", float("nan"), {})  # would violate NOT NULL and lose the batch
    batch[50] = (NOW, "n1", "m", "x", {})
    batch[60] = ("later", "n2", "m", 1.0, {})
    stored = write_batch(run, batch, lambda n, why: drops.append((n, why)))
    assert len(stored) == 97 and run.count() == 97
    assert drops == [(3, "malformed or non-finite")]
    run.close()


def test_add_data_refuses_non_finite_values_and_long_names():
    import math

    from mpigroup.telemetry.metrics import Telemetry

    tel = Telemetry.__new__(Telemetry)  # a handle with telemetry on, no runtime needed for the checks
    tel._level, tel._closed, tel._node = 1, False, "n1"
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="must be finite"):
            tel.add_data("m", bad)
    with pytest.raises(ValueError, match="timestamp of 'm' must be finite"):
        tel.add_data("m", 1.0, timestamp=math.nan)
    with pytest.raises(ValueError, match="at most 200"):
        tel.add_data("m" * 201, 1.0)
