"""Per-node time-series store in SQLite (pure: stdlib only, no MPI).

A run keeps one directory (see :func:`mpigroup.telemetry.config.base_dir`)
holding ``run.json`` (when, which nodes, level, endpoint) and one SQLite
database per node, ``<node>.db``:

* ``series(id, metric, tags)``: ``tags`` is canonical JSON (sorted keys);
  the node is the database itself and is added back as the tag ``node``.
* ``samples(series, ts, value)``: ``ts`` in seconds since the epoch.

The head writes every node's database; anyone can read a run afterwards
with :class:`RunStore` (``mpigroup telemetry show|plot RUN``).
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

__all__ = ["Sample", "Series", "NodeStore", "RunStore", "new_run_dir", "resolve_run"]

#: (timestamp, node, metric, value, tags)
Sample = tuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL, tags TEXT NOT NULL,
                                   UNIQUE (metric, tags));
CREATE TABLE IF NOT EXISTS samples (series INTEGER NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_series ON samples (series, ts);
"""


@dataclass
class Series:
    """One time series: a metric, its tags (``node`` included) and its points, oldest first."""

    metric: str
    tags: dict
    points: list = field(default_factory=list)  # [(ts, value)]


def _db_name(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", node) + ".db"


class NodeStore:
    """One node's database. Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: str, node: str, *, readonly: bool = False) -> None:
        self.path = path
        self.node = node
        self.readonly = readonly
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            os.chmod(path, 0o600)  # the samples are the user's (the run directory is 0700 too)
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], int] = {}

    def _series_id(self, metric: str, tags_json: str) -> int:
        key = (metric, tags_json)
        sid = self._ids.get(key)
        if sid is None:
            self._db.execute("INSERT OR IGNORE INTO series (metric, tags) VALUES (?, ?)", key)
            sid = self._db.execute("SELECT id FROM series WHERE metric = ? AND tags = ?", key).fetchone()[0]
            self._ids[key] = sid
        return sid

    def write(self, samples: Iterable[Sample]) -> int:
        """Store ``(ts, node, metric, value, tags)`` samples of this node; returns how many."""
        with self._lock:
            rows = [(self._series_id(metric, json.dumps(tags or {}, sort_keys=True)), float(ts), float(value))
                    for ts, _node, metric, value, tags in samples]
            try:
                self._db.executemany("INSERT INTO samples (series, ts, value) VALUES (?, ?, ?)", rows)
                self._db.commit()
            except BaseException:
                self._db.rollback()  # all or nothing: a caller may retry row by row
                raise
            return len(rows)

    def series(self, metric: Optional[str] = None) -> list[tuple[int, str, dict]]:
        """``[(id, metric, tags)]`` (tags with ``node``), optionally of one metric."""
        with self._lock:
            if metric is None:
                rows = self._db.execute("SELECT id, metric, tags FROM series ORDER BY metric, tags").fetchall()
            else:
                rows = self._db.execute("SELECT id, metric, tags FROM series WHERE metric = ? ORDER BY tags",
                                        (metric,)).fetchall()
        return [(sid, m, {**json.loads(tags), "node": self.node}) for sid, m, tags in rows]

    def points(self, sid: int, start: Optional[float] = None, end: Optional[float] = None) -> list:
        """``[(ts, value)]`` of one series between ``start`` and ``end`` (inclusive), oldest first."""
        lo = float("-inf") if start is None else start
        hi = float("inf") if end is None else end
        with self._lock:
            return self._db.execute(
                "SELECT ts, value FROM samples WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (sid, lo, hi)).fetchall()

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        """Close; a writer also leaves WAL mode, so the finished file is one plain database."""
        with self._lock:
            try:
                if not self.readonly:
                    self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:
                pass
            self._db.close()


class RunStore:
    """Every node's database of one run (the head writes through it; readers open it read-only)."""

    def __init__(self, run_dir: str, *, readonly: bool = True) -> None:
        if readonly and not os.path.isdir(run_dir):
            raise FileNotFoundError(f"no telemetry run directory {run_dir!r}")
        self.run_dir = run_dir
        self.readonly = readonly
        self._nodes: dict[str, NodeStore] = {}
        self._lock = threading.Lock()
        if readonly:
            meta = self.meta()
            names = meta.get("db_files") or {}
            for entry in sorted(os.listdir(run_dir)):
                if entry.endswith(".db"):
                    node = next((n for n, f in names.items() if f == entry), entry[:-3])
                    self._nodes[node] = NodeStore(os.path.join(run_dir, entry), node, readonly=True)

    # ------------------------------------------------------------ metadata
    def meta(self) -> dict:
        """The run's ``run.json`` ({} if missing)."""
        try:
            with open(os.path.join(self.run_dir, "run.json")) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def write_meta(self, **fields) -> None:
        meta = {**self.meta(), **fields, "db_files": {n: _db_name(n) for n in self._nodes}}
        tmp = os.path.join(self.run_dir, "run.json.tmp")
        with open(tmp, "w") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.run_dir, "run.json"))

    # ------------------------------------------------------------ writing
    def node(self, node: str) -> NodeStore:
        """The store of ``node``, created on first use (writers only)."""
        store = self._nodes.get(node)
        if store is None:
            if self.readonly:
                raise KeyError(f"no telemetry for node {node!r} in {self.run_dir}")
            with self._lock:
                store = self._nodes.get(node)
                if store is None:
                    store = NodeStore(os.path.join(self.run_dir, _db_name(node)), node)
                    self._nodes[node] = store
        return store

    def write(self, samples: Iterable[Sample]) -> int:
        """Store samples, each in its node's database."""
        by_node: dict[str, list] = {}
        for sample in samples:
            by_node.setdefault(sample[1], []).append(sample)
        return sum(self.node(node).write(rows) for node, rows in by_node.items())

    # ------------------------------------------------------------ reading
    def nodes(self) -> list[str]:
        return sorted(self._nodes)

    def metrics(self) -> list[str]:
        return sorted({m for store in list(self._nodes.values()) for _, m, _ in store.series()})

    def series(self, metric: Optional[str] = None) -> list[tuple[str, dict]]:
        """``[(metric, tags)]`` of every series (``node`` among the tags)."""
        return [(m, tags) for store in list(self._nodes.values()) for _, m, tags in store.series(metric)]

    def query(self, metric: str, start: Optional[float] = None, end: Optional[float] = None,
              tags: Optional[dict] = None) -> list[Series]:
        """Series of ``metric`` whose tags include ``tags`` (exact values), points within [start, end]."""
        want = tags or {}
        out = []
        for node in sorted(self._nodes):
            store = self._nodes[node]
            for sid, m, stags in store.series(metric):
                if all(stags.get(k) == str(v) for k, v in want.items()):
                    out.append(Series(m, stags, store.points(sid, start, end)))
        return out

    def count(self) -> int:
        return sum(store.count() for store in list(self._nodes.values()))

    def close(self) -> None:
        for store in list(self._nodes.values()):
            store.close()


def new_run_dir(base: str, now: Optional[float] = None) -> str:
    """Create ``base/<YYYYmmdd-HHMMSS>-<pid>`` and return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    path = os.path.join(base, f"{stamp}-{os.getpid()}")
    os.makedirs(path, mode=0o700, exist_ok=False)  # private, like the run directory
    os.chmod(path, 0o700)  # makedirs' mode is masked by the umask
    return path


def resolve_run(run: str, base: str) -> str:
    """A run given as a directory, a run id under ``base``, or ``latest`` (newest run under ``base``)."""
    if os.path.isdir(run):
        return os.path.abspath(run)
    if run == "latest":
        try:
            runs = [os.path.join(base, d) for d in os.listdir(base)
                    if os.path.isfile(os.path.join(base, d, "run.json"))]
        except OSError:
            runs = []
        if not runs:
            raise FileNotFoundError(f"no telemetry runs under {base}")
        return max(runs, key=lambda d: (os.path.getmtime(os.path.join(d, "run.json")), d))
    candidate = os.path.join(base, run)
    if os.path.isdir(candidate):
        return candidate
    raise FileNotFoundError(f"no telemetry run {run!r} (not a directory, and not a run id under {base})")


def well_formed(sample: Any) -> bool:
    """``(ts, node, metric, value, tags)`` with finite numbers (``add_data`` checks; not every sender does)."""
    try:
        ts, node, metric, value, tags = sample
        return (isinstance(node, str) and isinstance(metric, str) and isinstance(tags, dict)
                and math.isfinite(float(ts)) and math.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def write_batch(store: "RunStore", samples: list, drop: Callable[[int, str], None]) -> list:
    """Store what can be stored; returns the samples stored.

    A malformed sample, or one the database refuses, costs only itself
    (``drop(count, why)`` is told): a node whose batch fails is written
    again row by row.
    """
    good = [s for s in samples if well_formed(s)]
    if len(good) < len(samples):
        drop(len(samples) - len(good), "malformed or non-finite")
    by_node: dict[str, list] = {}
    for sample in good:
        by_node.setdefault(sample[1], []).append(sample)
    stored = []
    for node, rows in by_node.items():
        target = store.node(node)
        try:
            target.write(rows)
            stored += rows
        except Exception:  # noqa: BLE001 (retried one by one below)
            for row in rows:
                try:
                    target.write([row])
                    stored.append(row)
                except Exception as exc:  # noqa: BLE001 (reported through drop)
                    drop(1, f"refused by the store ({exc})")
    return stored
