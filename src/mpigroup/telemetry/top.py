"""``mpigroup top``: live tqdm bars per node from a running head's endpoint.

Per node one bar for the 1-minute load average (out of the node's CPUs) and
one per GPU for its utilisation, as the seed's ``--bars`` output. Values
come from the endpoint's ``/api/query/last`` (the OpenTSDB API), so ``top``
runs anywhere that can reach the head's port.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Optional

__all__ = ["fetch_last", "node_frame", "Bars", "run_top"]

METRICS = ("system_load_average", "cpu_count", "gpu_utilization")


def fetch_last(url: str, metrics=METRICS, timeout: float = 5.0) -> list[dict]:
    """Newest point of every series of ``metrics`` (``/api/query/last``)."""
    query = "&".join(f"timeseries={m}" for m in metrics) + "&back_scan=1"
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/query/last?{query}", timeout=timeout) as reply:
            return json.loads(reply.read())
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"cannot reach the telemetry endpoint {url} ({exc}); is a run with "
                              "--telemetry-level 2 or more running? Point at it with --url or --port") from None


def node_frame(rows: list[dict]) -> dict:
    """``{node: {"load": x, "cpus": n, "gpus": {device: util}}}`` from last-value rows."""
    frame: dict = {}
    for row in rows:
        node = row["tags"].get("node", "?")
        entry = frame.setdefault(node, {"load": None, "cpus": None, "gpus": {}})
        if row["metric"] == "system_load_average":
            entry["load"] = row["value"]
        elif row["metric"] == "cpu_count":
            entry["cpus"] = row["value"]
        elif row["metric"] == "gpu_utilization":
            entry["gpus"][row["tags"].get("device", "?")] = row["value"]
    return frame


class Bars:
    """One tqdm bar per (node, load) and (node, GPU), created as series appear."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.bars: dict = {}

    def _bar(self, key: tuple, desc: str, total: float):
        from tqdm import tqdm  # optional (the telemetry extra): loaded once bars are drawn

        bar = self.bars.get(key)
        if bar is None:
            bar = tqdm(total=total, desc=desc, position=len(self.bars), file=self.file, leave=True,
                       bar_format="{desc} |{bar:30}|", dynamic_ncols=False, ncols=100)
            self.bars[key] = bar
        return bar

    def update(self, frame: dict) -> None:
        for node in sorted(frame):
            entry = frame[node]
            if entry["load"] is not None:
                total = entry["cpus"] or 1.0
                bar = self._bar((node, "load"), f"{node} cpu load average 1 min", total)
                bar.total = total
                bar.n = min(entry["load"], total)  # the bar saturates; the text gives the real load
                bar.set_description_str(f"{node} cpu load average 1 min: {entry['load']:6.2f} on {total:.0f} CPUs")
            for device in sorted(entry["gpus"], key=lambda d: (len(d), d)):
                bar = self._bar((node, "gpu", device), f"{node} device # {device} utilization", 100.0)
                bar.n = entry["gpus"][device]
                bar.set_description_str(f"{node} device # {device} utilization: {entry['gpus'][device]:5.1f}%")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run_top(url: str, interval: float = 1.0, once: bool = False, wait: float = 10.0,
            file: Optional[IO[str]] = None, duration: Optional[float] = None,
            stop: Optional[threading.Event] = None) -> int:
    """Draw bars until Ctrl-C (or one frame with ``once``); returns an exit status.

    With ``stop`` (``mpigroup run --bars``) the endpoint may not be up yet: connection errors are
    retried until ``stop`` is set.
    """
    out = file or sys.stdout
    bars = Bars(out)
    started = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            try:
                frame = node_frame(fetch_last(url))
            except ConnectionError:
                if stop is None:
                    raise
                stop.wait(interval)
                continue
            if frame:
                bars.update(frame)
                if once:
                    return 0
            elif once and time.monotonic() - started > wait:
                print(f"mpigroup top: no node metrics at {url} after {wait:.0f} s "
                      "(telemetry level 2 or more is needed for host metrics)", file=sys.stderr)
                return 1
            if duration is not None and time.monotonic() - started > duration:
                return 0
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        bars.close()
