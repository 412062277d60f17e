"""configs/grafana: the provisioning YAML and the dashboard agree, and every panel query evaluates."""
import json
from pathlib import Path

import yaml

from mpigroup.telemetry import naming, opentsdb
from mpigroup.telemetry.runstore import RunStore

GRAFANA = Path(__file__).resolve().parents[2] / "configs" / "grafana"
NOW = 1_700_000_000.0


def _store(tmp_path):
    run = RunStore(str(tmp_path), readonly=False)
    samples = []
    for i in range(30):
        for node in ("n1", "n2"):
            samples += [(NOW + i, node, "system_load_average", 1.0, {}), (NOW + i, node, "cpu_percent", 50.0, {}),
                        (NOW + i, node, "memory_used", 1e9, {}), (NOW + i, node, "memory_total", 8e9, {})]
            for dev in ("0", "1"):
                samples += [(NOW + i, node, m, 10.0, {"device": dev})
                            for m in ("gpu_utilization", "gpu_memory_used", "gpu_memory_utilization")]
        samples.append((NOW + i, "n1", "request_latency", 0.1, {"worker": "0"}))
    run.write(samples)
    return run


def test_datasource_and_dashboard_agree():
    ds = yaml.safe_load((GRAFANA / "datasource.yaml").read_text())["datasources"][0]
    assert ds["type"] == "opentsdb" and ds["url"].startswith("http://127.0.0.1:8000")
    dashboard = json.loads((GRAFANA / "mpigroup-dashboard.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    uids |= {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]}
    known = {m for m, _, _ in naming.HOST_METRICS + naming.GPU_METRICS}
    metrics = {t["metric"] for p in dashboard["panels"] for t in p["targets"]}
    assert metrics - {"$user_metric"} <= known and "gpu_utilization" in metrics
    providers = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file"


def test_every_panel_query_answers(tmp_path):
    """Each target, sent the way Grafana's OpenTSDB data source sends it, gets series back."""
    run = _store(tmp_path)
    dashboard = json.loads((GRAFANA / "mpigroup-dashboard.json").read_text())
    values = {"$node": "n1|n2", "$user_metric": "request_latency"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query = {"metric": values.get(target["metric"], target["metric"]), "aggregator": target["aggregator"],
                     "downsample": f"10s-{target['downsampleAggregator']}",
                     "filters": [{**f, "filter": values.get(f["filter"], f["filter"])} for f in target["filters"]]}
            body = {"start": int(NOW * 1000), "end": int((NOW + 60) * 1000), "queries": [query], "msResolution": False}
            status, answer = opentsdb.handle(run, "POST", "/api/query", {}, json.dumps(body).encode())
            assert status == 200 and answer, (panel["title"], answer)
            grouped = {f["tagk"] for f in target["filters"] if f["groupBy"]}
            for series in answer:
                assert grouped <= set(series["tags"]) and len(series["dps"]) == 3
    # the template variables' queries
    node_var, metric_var = dashboard["templating"]["list"]
    assert node_var["query"] == "tag_values(system_load_average, node)"
    found = opentsdb.lookup(run, "system_load_average")
    assert sorted({r["tags"]["node"] for r in found["results"]}) == ["n1", "n2"]
    assert "request_latency" in opentsdb.suggest(run, "metrics", "", 1000)
