"""Metric and tag names: validation and the Prometheus forms (pure).

Names follow OpenTSDB's character set (letters, digits, ``-_./``), which
both exporters accept once mapped. A Prometheus metric is the stored name
with ``mpigroup_`` in front and every character outside ``[a-zA-Z0-9_]``
turned into ``_``; every sample carries the label ``node`` (the host name),
GPU series add ``device`` (the GPU index on that node) and user metrics add
their own tags.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Tuple

__all__ = ["Sample", "PROM_PREFIX", "RESERVED_TAGS", "check_metric_name", "check_tags", "prometheus_name", "label_name",
           "HOST_METRICS", "GPU_METRICS"]

#: One telemetry sample: ``(ts, node, metric, value, tags)``, epoch seconds and a ``{str: str}`` tag dict.
#: A plain tuple on purpose (a NamedTuple pickles about ten times slower, and workers pickle each one).
Sample = Tuple[float, str, str, float, Mapping[str, str]]

PROM_PREFIX = "mpigroup_"
RESERVED_TAGS = ("node",)  # set by the runtime on every sample
_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")
MAX_NAME_LEN = 200  # metric and tag names: Prometheus and SQLite cope, a runaway loop does not fill them
_PROM_BAD = re.compile(r"[^A-Za-z0-9_]")

#: level 2: (metric, unit, help)
HOST_METRICS = (
    ("system_load_average", "", "1-minute load average of the node"),
    ("cpu_percent", "percent", "CPU utilisation of the node over the last interval"),
    ("cpu_count", "", "logical CPUs of the node"),
    ("memory_used", "bytes", "memory in use on the node"),
    ("memory_total", "bytes", "physical memory of the node"),
)
#: level 3, one series per GPU (tag ``device``)
GPU_METRICS = (
    ("gpu_utilization", "percent", "GPU compute utilisation"),
    ("gpu_memory_utilization", "percent", "GPU memory controller utilisation"),
    ("gpu_memory_used", "bytes", "GPU memory in use"),
    ("gpu_memory_free", "bytes", "GPU memory free"),
    ("gpu_memory_total", "bytes", "GPU memory in total"),
)


def check_metric_name(name: Any) -> str:
    """Return ``name`` if it is a valid metric name, else raise ``ValueError``/``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"telemetry metric name must be a str, got {type(name).__name__}")
    if len(name) > MAX_NAME_LEN:
        raise ValueError(f"telemetry metric name {name[:40]!r}... is {len(name)} characters long; "
                         f"at most {MAX_NAME_LEN} are allowed")
    if not _NAME.match(name):
        raise ValueError(f"telemetry metric name {name!r} is not valid: use letters, digits and -_./")
    return name


def check_tags(tags: Any) -> dict[str, str]:
    """Validate user tags; returns a new ``{str: str}`` dict (values are converted with ``str``)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"telemetry tags must be a dict of name -> value, got {type(tags).__name__}")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or len(key) > MAX_NAME_LEN or not _NAME.match(key):
            raise ValueError(f"telemetry tag name {key!r} is not valid: use letters, digits and -_./")
        if key in RESERVED_TAGS:
            raise ValueError(f"telemetry tag {key!r} is set by mpigroup (the host name); choose another name")
        text = str(value)
        if not _NAME.match(text):
            raise ValueError(f"telemetry tag value {value!r} (tag {key!r}) is not valid: "
                             "use letters, digits and -_./")
        out[key] = text
    return out


def prometheus_name(metric: str) -> str:
    """``gpu_utilization`` -> ``mpigroup_gpu_utilization``; ``req.latency/s`` -> ``mpigroup_req_latency_s``."""
    return PROM_PREFIX + _PROM_BAD.sub("_", metric)


def label_name(tag: str) -> str:
    """A tag name as a Prometheus label (``__`` prefixes are reserved there)."""
    label = _PROM_BAD.sub("_", tag)
    if label[0].isdigit() or label.startswith("__"):
        label = "tag_" + label.lstrip("_")
    return label
