"""OpenTSDB HTTP API evaluation over a run's store (pure; no HTTP, no MPI).

What Grafana's OpenTSDB data source calls, as Dragon's aggregator serves it:
``/api/query`` (POST JSON body, or GET with ``m=``), ``/api/query/last``,
``/api/suggest``, ``/api/search/lookup``, ``/api/aggregators``,
``/api/config/filters`` and ``/api/version``. Handlers take the decoded
request and a *source* with ``query(metric, start, end) -> [Series]``,
``metrics()`` and ``series()`` (a :class:`~.runstore.RunStore`), and return
``(status, json-able body)``.

Semantics kept from OpenTSDB: times are epoch seconds or milliseconds (13
digits), ``<n><unit>-ago`` or ``YYYY/MM/DD-HH:MM:SS``; series are grouped by
the tags given as ``*``/``a|b`` (or filters with ``groupBy``) and aggregated
per timestamp; ``downsample`` is ``<interval>-<agg>[-<fill>]`` (``0all``
for one bucket). Differences: series are aligned on their (downsampled)
timestamps without OpenTSDB's linear interpolation, and rates/histograms
are not supported (a clear 400 says so).

The work per request is bounded: a query that would return more than
``max_points`` points (``MPIGROUP_TELEMETRY_MAX_POINTS``) is refused with a
400 naming the setting, counted *before* any fill loop runs, and every
malformed request (bad JSON, wrong types, non-finite numbers) is a 400.
"""
from __future__ import annotations

import calendar
import json
import math
import re
import statistics
import time
from typing import Any, Callable, Optional

__all__ = ["AGGREGATORS", "DEFAULT_MAX_POINTS", "MAX_POINTS_SETTING", "parse_time", "parse_downsample", "parse_m",
           "query", "query_last", "suggest", "lookup", "handle", "BadRequest"]


class BadRequest(ValueError):
    """A malformed or unsupported request (HTTP 400 with this message)."""


MAX_POINTS_SETTING = "MPIGROUP_TELEMETRY_MAX_POINTS"
DEFAULT_MAX_POINTS = 100_000  # the evaluation's own default; the endpoint passes the setting's value


def _percentile(p: float) -> Callable[[list], float]:
    def agg(values: list) -> float:
        ordered = sorted(values)
        k = (len(ordered) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
    return agg


AGGREGATORS: dict[str, Callable[[list], float]] = {
    "sum": sum, "zimsum": sum,
    "min": min, "mimmin": min,
    "max": max, "mimmax": max,
    "avg": lambda v: sum(v) / len(v),
    "count": lambda v: float(len(v)),
    "dev": lambda v: statistics.pstdev(v) if len(v) > 1 else 0.0,
    "first": lambda v: v[0], "last": lambda v: v[-1],
    "median": statistics.median,
    "p50": _percentile(0.50), "p75": _percentile(0.75), "p90": _percentile(0.90),
    "p95": _percentile(0.95), "p99": _percentile(0.99),
    "none": lambda v: v[-1],
}
FILTERS = {
    "literal_or": "Accepts one or more exact values, separated by |: web01|web02",
    "iliteral_or": "Like literal_or, ignoring case",
    "not_literal_or": "Accepts every value except the ones given, separated by |",
    "wildcard": "Accepts values matching a pattern with * wildcards: web*",
    "iwildcard": "Like wildcard, ignoring case",
    "regexp": "Accepts values matching a Python regular expression",
}
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "n": 30 * 86400, "y": 365 * 86400}
_REL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|n|y)-ago$")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|n|y)$")


# ----------------------------------------------------------------- parsing
def parse_time(value: Any, now: Optional[float] = None) -> float:
    """OpenTSDB time -> epoch seconds."""
    now = time.time() if now is None else now
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            raise BadRequest(f"bad time {value!r}: not a finite number")
        return number / 1000.0 if abs(number) >= 1e11 else number  # 13-digit values are milliseconds
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"bad time {value!r}")
    text = value.strip()
    if text == "now":
        return now
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_time(float(text), now)
    rel = _REL.match(text)
    if rel:
        return now - float(rel.group(1)) * _UNITS[rel.group(2)]
    for fmt in ("%Y/%m/%d-%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d-%H:%M", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))  # UTC, as OpenTSDB's default zone
        except ValueError:
            continue
    raise BadRequest(f"bad time {value!r}: use epoch seconds/ms, '<n><unit>-ago' or 'YYYY/MM/DD-HH:MM:SS'")


def _interval(text: str) -> float:
    match = _INTERVAL.match(text)
    if not match:
        raise BadRequest(f"bad interval {text!r}: use e.g. 10s, 1m, 1h")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds < math.inf:
        raise BadRequest(f"bad interval {text!r}: must be positive")
    return seconds


def parse_downsample(spec: Optional[str]) -> Optional[tuple[Optional[float], str, str]]:
    """``"1m-avg[-fill]"`` -> (seconds or None for ``0all``, aggregator, fill policy); None -> None."""
    if not spec:
        return None
    if not isinstance(spec, str):
        raise BadRequest(f"bad downsample {spec!r}: a string such as '1m-avg'")
    parts = spec.split("-")
    if len(parts) not in (2, 3):
        raise BadRequest(f"bad downsample {spec!r}: use <interval>-<aggregator>[-<fill>]")
    width = None if parts[0] == "0all" else _interval(parts[0])
    if parts[1] not in AGGREGATORS or parts[1] == "none":
        raise BadRequest(f"bad downsample aggregator {parts[1]!r} in {spec!r}")
    fill = parts[2] if len(parts) == 3 else "none"
    if fill not in ("none", "nan", "null", "zero"):
        raise BadRequest(f"bad downsample fill policy {fill!r}: none, nan, null or zero")
    return width, parts[1], fill


def parse_m(m: str) -> dict:
    """A GET ``m=`` expression (``agg:[interval-agg:][rate:]metric[{tags}][{filters}]``) -> a sub-query dict."""
    braces = m.find("{")
    head, rest = (m, "") if braces < 0 else (m[:braces], m[braces:])
    parts = head.split(":")
    if len(parts) < 2:
        raise BadRequest(f"bad m={m!r}: use aggregator:[downsample:]metric[{{tag=value}}]")
    query: dict = {"aggregator": parts[0], "metric": parts[-1]}
    for middle in parts[1:-1]:
        if middle.startswith("rate"):
            raise BadRequest("rate queries are not supported")
        query["downsample"] = middle
    groups = re.findall(r"\{([^}]*)\}", rest)
    filters = []
    for index, group in enumerate(groups):
        for pair in filter(None, group.split(",")):
            if "=" not in pair:
                raise BadRequest(f"bad tag {pair!r} in m={m!r}: use tag=value")
            key, value = (s.strip() for s in pair.split("=", 1))
            filters.append(_filter_from_value(key, value, group_by=(index == 0)))
    query["filters"] = filters
    return query


def _filter_from_value(key: str, value: str, group_by: bool) -> dict:
    """OpenTSDB 1.x tag syntax: ``*`` and ``a|b`` group by; a plain value is an exact match."""
    if value == "*":
        return {"type": "wildcard", "tagk": key, "filter": "*", "groupBy": group_by}
    if "(" in value and value.endswith(")"):  # explicit filter: literal_or(a|b)
        kind, arg = value[:-1].split("(", 1)
        return {"type": kind, "tagk": key, "filter": arg, "groupBy": group_by}
    return {"type": "literal_or", "tagk": key, "filter": value, "groupBy": group_by and "|" in value}


def _matcher(flt: Any) -> Callable[[Optional[str]], bool]:
    if not isinstance(flt, dict) or not isinstance(flt.get("tagk"), str):
        raise BadRequest(f"bad filter {flt!r}: an object with 'type', 'tagk' and 'filter'")
    kind, pattern = flt.get("type", "literal_or"), str(flt.get("filter", ""))
    if kind not in FILTERS:
        raise BadRequest(f"unknown filter type {kind!r}: one of {sorted(FILTERS)}")
    if kind in ("literal_or", "iliteral_or", "not_literal_or"):
        fold = kind == "iliteral_or"
        options = {(v.lower() if fold else v) for v in pattern.split("|")}
        if kind == "not_literal_or":
            return lambda v: v is not None and v not in options
        return lambda v: v is not None and (v.lower() if fold else v) in options
    if kind in ("wildcard", "iwildcard"):
        rx = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$",
                        re.IGNORECASE if kind == "iwildcard" else 0)
        return lambda v: v is not None and bool(rx.match(v))
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise BadRequest(f"bad regexp {pattern!r}: {exc}") from None
    return lambda v: v is not None and bool(rx.search(v))


# -------------------------------------------------------------- evaluation
def _downsample(points: list, spec: Optional[tuple], start: float, end: float) -> list:
    if spec is None:
        return [(int(ts), value) for ts, value in points]  # align raw samples on whole seconds
    width, agg_name, fill = spec
    agg = AGGREGATORS[agg_name]
    buckets: dict[float, list] = {}
    for ts, value in points:
        key = start if width is None else math.floor(ts / width) * width
        buckets.setdefault(key, []).append(value)
    out = [(key, agg(values)) for key, values in sorted(buckets.items())]
    if fill != "none" and width is not None and out:
        filler = 0.0 if fill == "zero" else (None if fill == "null" else float("nan"))
        have = dict(out)
        first, last = math.floor(start / width) * width, math.floor(end / width) * width
        out = []
        key = first
        while key <= last:
            out.append((key, have.get(key, filler)))
            key += width
    return out


class _Budget:
    """The points a query may still return; spending past it raises a 400 naming the setting."""

    def __init__(self, limit: int) -> None:
        self.limit, self.left = limit, limit

    def spend(self, points: int, what: str) -> None:
        self.left -= points
        if self.left < 0:
            raise BadRequest(f"the query would return more than {self.limit} points ({what}), the cap set by "
                             f"{MAX_POINTS_SETTING}: narrow the time range or use a wider downsample interval")


def _expected_points(members: list, spec: Optional[tuple], start: float, end: float) -> int:
    """An upper bound on the points one group yields, counted without building them."""
    raw = sum(len(s.points) for s in members)
    if spec is None:
        return raw
    width, _, fill = spec
    if width is None:
        return 1
    buckets = math.floor(end / width) - math.floor(start / width) + 1
    return buckets if fill != "none" else min(raw, buckets)


def _sub_query(source: Any, sub: dict, start: float, end: float, ms: bool, budget: _Budget) -> list[dict]:
    metric = sub.get("metric")
    if not isinstance(metric, str) or not metric:
        raise BadRequest("each query needs a 'metric'")
    agg_name = sub.get("aggregator", "sum")
    if agg_name not in AGGREGATORS:
        raise BadRequest(f"unknown aggregator {agg_name!r}: one of {sorted(AGGREGATORS)}")
    if sub.get("rate"):
        raise BadRequest("rate queries are not supported")
    filters, tags = sub.get("filters") or [], sub.get("tags") or {}
    if not isinstance(filters, list) or not isinstance(tags, dict):
        raise BadRequest("'filters' must be a list of objects and 'tags' an object")
    filters = filters + [_filter_from_value(str(key), str(value), group_by=True)  # OpenTSDB 1.x/2.0 tags
                         for key, value in tags.items()]
    matchers = [(_matcher(f), f["tagk"]) for f in filters]  # _matcher first: it checks the filter's shape
    group_keys = sorted({f["tagk"] for f in filters if f.get("groupBy")})
    spec = parse_downsample(sub.get("downsample"))
    filled = _expected_points([], spec, start, end) if spec is not None and spec[2] != "none" else 0
    if filled > budget.left:  # one filled series alone is too many: refused before reading the store
        budget.spend(filled, f"one series filled every {sub.get('downsample')}")
    selected = [s for s in source.query(metric, start, end)
                if all(match(s.tags.get(key)) for match, key in matchers)]
    if agg_name == "none":  # every series on its own
        groups = {tuple(sorted(s.tags.items())): [s] for s in selected}
    else:
        groups = {}
        for s in selected:
            groups.setdefault(tuple((k, s.tags.get(k)) for k in group_keys), []).append(s)
    for members in groups.values():
        budget.spend(_expected_points(members, spec, start, end), f"{len(groups)} series of {metric}")
    agg = AGGREGATORS[agg_name]
    results = []
    for _, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        by_ts: dict[float, list] = {}
        for s in members:
            for ts, value in _downsample(s.points, spec, start, end):
                by_ts.setdefault(ts, []).append(value)
        dps = {}
        for ts, values in sorted(by_ts.items()):
            present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
            value = agg(present) if present else values[0]
            if isinstance(value, float) and math.isnan(value):
                value = "NaN"
            key = str(int(ts * 1000)) if ms else str(int(ts))
            dps[key] = value
        common = dict(members[0].tags)
        for s in members[1:]:
            common = {k: v for k, v in common.items() if s.tags.get(k) == v}
        aggregate_tags = sorted({k for s in members for k in s.tags} - set(common))
        results.append({"metric": metric, "tags": common, "aggregateTags": aggregate_tags, "dps": dps})
    return results


def query(source: Any, body: dict, now: Optional[float] = None, max_points: int = DEFAULT_MAX_POINTS
          ) -> list[dict]:
    """Evaluate an ``/api/query`` body: ``{start, [end], queries: [...], [msResolution]}``.

    Raises :class:`BadRequest` when the answer would hold more than ``max_points`` points.
    """
    if not isinstance(body, dict):
        raise BadRequest("the query body must be a JSON object")
    if "start" not in body:
        raise BadRequest("a query needs 'start'")
    queries = body.get("queries")
    if not isinstance(queries, list) or not queries:
        raise BadRequest("a query needs a non-empty 'queries' list")
    now = time.time() if now is None else now
    start = parse_time(body["start"], now)
    end = parse_time(body["end"], now) if body.get("end") not in (None, "") else now
    if end < start:
        raise BadRequest("'end' is before 'start'")
    ms = bool(body.get("msResolution") or body.get("ms"))
    budget = _Budget(max_points)
    out = []
    for sub in queries:
        if not isinstance(sub, dict):
            raise BadRequest("each entry of 'queries' must be an object")
        out.extend(_sub_query(source, sub, start, end, ms, budget))
    return out


def query_last(source: Any, metrics: list[str], back_seconds: float = 3600.0,
               now: Optional[float] = None) -> list[dict]:
    """``/api/query/last``: the newest point of every series of each metric (within ``back_seconds``)."""
    now = time.time() if now is None else now
    out = []
    for metric in metrics:
        for s in source.query(metric, now - back_seconds, None):
            if s.points:
                ts, value = s.points[-1]
                out.append({"metric": metric, "tags": s.tags, "timestamp": int(ts * 1000), "value": value})
    return out


def suggest(source: Any, kind: str, prefix: str = "", limit: int = 25) -> list[str]:
    """``/api/suggest``: metric names, tag keys or tag values starting with ``prefix``."""
    if kind == "metrics":
        names = source.metrics()
    elif kind in ("tagk", "tagv"):
        pairs = {(k, v) for _, tags in source.series() for k, v in tags.items()}
        names = sorted({k if kind == "tagk" else v for k, v in pairs})
    else:
        raise BadRequest(f"bad suggest type {kind!r}: metrics, tagk or tagv")
    return [n for n in names if n.startswith(prefix)][:max(0, limit)]


def lookup(source: Any, metric: str, limit: int = 1000) -> dict:
    """``/api/search/lookup?m=metric``: the tag sets of a metric (Grafana reads tag keys from it)."""
    results = [{"metric": m, "tags": tags, "tsuid": ""} for m, tags in source.series(metric)][:limit]
    return {"type": "LOOKUP", "metric": metric, "limit": limit, "time": 0,
            "totalResults": len(results), "results": results}


def _first(params: dict, name: str, default: Optional[str] = None) -> Optional[str]:
    values = params.get(name)
    return values[0] if values else default


def _json(body: Optional[bytes], empty: bytes = b"") -> Any:
    try:
        return json.loads(body or empty)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError included; RecursionError: [[[[...
        raise BadRequest(f"the body is not JSON: {exc!r}"[:300]) from None


def _back_scan(value: Any) -> float:
    """OpenTSDB's ``backScan`` (hours) -> seconds."""
    hours = float(value)
    if not 0 <= hours < math.inf:
        raise BadRequest(f"bad backScan {value!r}: a number of hours >= 0")
    return hours * 3600


def _last_request(request: Any) -> tuple[list[str], float]:
    """A POST ``/api/query/last`` body -> (metrics, seconds back)."""
    queries = request.get("queries", []) if isinstance(request, dict) else None
    if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
        raise BadRequest("the body must be an object with a 'queries' list of objects")
    metrics = [q["metric"] for q in queries if q.get("metric")]
    if not all(isinstance(m, str) for m in metrics):
        raise BadRequest("each query's 'metric' must be a string")
    return metrics, _back_scan(request.get("backScan", 1))


def handle(source: Any, method: str, path: str, params: dict, body: Optional[bytes],
           max_points: int = DEFAULT_MAX_POINTS) -> tuple[int, Any]:
    """Route one request. ``params`` is ``urllib.parse.parse_qs`` output; returns (status, JSON body).

    A malformed request is a 400 with ``{"error": {"code": 400, "message": ...}}``, never an exception.
    """
    try:
        if path == "/api/query":
            if method == "POST":
                request = _json(body)
            else:
                ms = params.get("m") or []
                if not ms:
                    raise BadRequest("GET /api/query needs m=aggregator:metric")
                request = {"start": _first(params, "start"), "end": _first(params, "end"),
                           "msResolution": _first(params, "ms", "") in ("true", "1"),
                           "queries": [parse_m(m) for m in ms]}
                if request["start"] is None:
                    raise BadRequest("GET /api/query needs start=")
            return 200, query(source, request, max_points=max_points)
        if path == "/api/query/last":
            if method == "POST":
                metrics, back = _last_request(_json(body, b"{}"))
            else:
                metrics = [t.split("{", 1)[0] for t in params.get("timeseries", [])]
                back = _back_scan(_first(params, "back_scan", "1"))
            return 200, query_last(source, metrics, back)
        if path == "/api/suggest":
            return 200, suggest(source, _first(params, "type", "metrics"), _first(params, "q", ""),
                                int(_first(params, "max", "25")))
        if path == "/api/search/lookup":
            m = _first(params, "m", "")
            if not m:
                raise BadRequest("/api/search/lookup needs m=metric")
            return 200, lookup(source, m.split("{", 1)[0], int(_first(params, "limit", "1000")))
        if path == "/api/aggregators":
            return 200, sorted(AGGREGATORS)
        if path == "/api/config/filters":
            return 200, {name: {"description": text, "examples": ""} for name, text in FILTERS.items()}
        if path == "/api/version":
            return 200, {"version": "2.4.0", "short_revision": "mpigroup", "repo": "mpigroup"}
    except BadRequest as exc:
        return 400, {"error": {"code": 400, "message": str(exc)}}
    except (ValueError, TypeError, OverflowError) as exc:
        return 400, {"error": {"code": 400, "message": f"bad request: {exc}"}}
    return 404, {"error": {"code": 404, "message": f"no endpoint {path}"}}
