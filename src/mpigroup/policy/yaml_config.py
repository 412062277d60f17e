"""YAML affinity configs: per-node worker slots with their CPUs and GPUs.

A config describes the layout of *one* node (which CPUs go with which GPU) and
which nodes of the allocation it applies to. :func:`policies_from_yaml` expands
it into one ``HOST_NAME`` :class:`~mpigroup.policy.policy.Policy` per slot per
node. The schema (see ``configs/README.md`` for the full text)::

    name: polaris            # optional str
    description: ...         # optional str
    gpu_vendor: nvidia       # optional: nvidia | amd | intel
    nodes: all               # optional, default "all"; or a list of hostnames
    slots:                   # required, non-empty list
      - gpu: [3]             # optional: int or list of ints
        cpus: "0-7"          # optional: "a-b,c" range string, int or list of ints
        count: 1             # optional positive int, processes for this slot

Each slot needs ``cpus`` and/or ``gpu``. CPUs of different slots must not
overlap. Every :class:`~mpigroup.errors.ConfigError` message has the form
``"<file>: <field path>: <reason>"``, e.g. ``"a.yaml: slots[2].cpus: ..."``.

Pure: needs pyyaml, never MPI.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import yaml

from mpigroup.errors import ConfigError
from mpigroup.policy.evaluate import format_ranges
from mpigroup.policy.policy import Policy
from mpigroup.topology import Allocation, NodeDesc

__all__ = [
    "SlotConfig",
    "AffinityConfig",
    "load_affinity_config",
    "policies_from_yaml",
    "parse_id_list",
]

PathLike = Union[str, "os.PathLike[str]"]

TOP_KEYS = ("name", "description", "gpu_vendor", "nodes", "slots")
SLOT_KEYS = ("cpus", "gpu", "count")
MAX_SLOT_COUNT = 4096  # per slot and node: far above any node's cores; 1e8 would hang the expansion
GPU_VENDORS = ("nvidia", "amd", "intel")

_RANGE_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def _err(path: str, field: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: {field}: {reason}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_id_list(value: Any, path: str, field: str) -> tuple[int, ...]:
    """CPU/GPU ids from a range string (``"0-7,16"``), an int or a list of ints.

    Order is kept as written; negatives, duplicates, descending ranges and
    malformed text raise ConfigError naming ``path`` and ``field``.
    """
    ids: list[int] = []
    if isinstance(value, str):
        if not value.strip():
            raise _err(path, field, "empty range string")
        for part in value.split(","):
            m = _RANGE_PART.match(part)
            if m is None:
                hint = " (negative numbers are not allowed)" if part.strip().startswith("-") else ""
                raise _err(
                    path, field,
                    f"malformed range {part.strip()!r} in {value!r}: expected 'N' or 'A-B'{hint}",
                )
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise _err(path, field, f"malformed range {part.strip()!r} in {value!r}: start > end")
            ids.extend(range(lo, hi + 1))
    elif _is_int(value):
        ids = [value]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if not _is_int(v):
                raise _err(path, f"{field}[{i}]", f"expected a non-negative int, got {type(v).__name__} {v!r}")
            ids.append(v)
        if not ids:
            raise _err(path, field, "empty list")
    else:
        raise _err(
            path, field,
            f"expected a range string, an int or a list of ints, got {type(value).__name__} {value!r}",
        )
    negative = [v for v in ids if v < 0]
    if negative:
        raise _err(path, field, f"negative numbers are not allowed: {negative}")
    dups = sorted({v for v in ids if ids.count(v) > 1})
    if dups:
        raise _err(path, field, f"duplicate ids {dups}")
    return tuple(ids)


@dataclass(frozen=True)
class SlotConfig:
    """One worker slot on each node: its CPUs, GPUs and process count."""

    index: int  # position in ``slots`` (for error messages)
    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    count: int = 1


@dataclass(frozen=True)
class AffinityConfig:
    """A validated affinity config file. ``nodes`` None means every node."""

    path: str
    slots: tuple[SlotConfig, ...]
    name: Optional[str] = None
    description: Optional[str] = None
    gpu_vendor: Optional[str] = None
    nodes: Optional[tuple[str, ...]] = None

    def select_nodes(self, allocation: Allocation) -> list[NodeDesc]:
        """The allocation's nodes this config applies to (all, or the listed ones)."""
        if self.nodes is None:
            return list(allocation.nodes)
        selected = []
        for i, host in enumerate(self.nodes):
            try:
                selected.append(allocation.by_hostname(host))
            except KeyError:
                raise _err(
                    self.path, f"nodes[{i}]",
                    f"host {host!r} is not in the allocation (hosts: {allocation.hostnames})",
                ) from None
        return selected

    def check_node(self, node: NodeDesc) -> None:
        """Raise ConfigError if the vendor or a slot's CPUs/GPUs do not fit ``node``."""
        uses_gpus = any(slot.gpus for slot in self.slots)
        if (
            uses_gpus
            and self.gpu_vendor is not None
            and node.gpu_vendor is not None
            and node.gpu_vendor != self.gpu_vendor
        ):
            raise _err(
                self.path, "gpu_vendor",
                f"config is for {self.gpu_vendor!r} GPUs but host {node.hostname!r} "
                f"has {node.gpu_vendor!r} GPUs",
            )
        for slot in self.slots:
            missing = [c for c in slot.cpus if c not in node.cpus]
            if missing:
                raise _err(
                    self.path, f"slots[{slot.index}].cpus",
                    f"cpus {format_ranges(missing)} do not exist on host {node.hostname!r} "
                    f"(its cpus: {format_ranges(node.cpus)})",
                )
            missing = [g for g in slot.gpus if g not in node.gpus]
            if missing:
                raise _err(
                    self.path, f"slots[{slot.index}].gpu",
                    f"gpus {missing} do not exist on host {node.hostname!r} "
                    f"(its gpus: {format_ranges(node.gpus)})",
                )

    def policies(self, allocation: Allocation) -> list[Policy]:
        """Node-major expansion: for each node, each slot, ``count`` policies."""
        result: list[Policy] = []
        for node in self.select_nodes(allocation):
            self.check_node(node)
            for slot in self.slots:
                for _ in range(slot.count):
                    result.append(
                        Policy(
                            placement=Policy.Placement.HOST_NAME,
                            host_name=node.hostname,
                            cpu_affinity=list(slot.cpus),
                            gpu_affinity=list(slot.gpus),
                        )
                    )
        return result


def _opt_str(doc: dict, key: str, path: str) -> Optional[str]:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _err(path, key, f"expected a string, got {type(value).__name__} {value!r}")
    return value


def _parse_nodes(value: Any, path: str) -> Optional[tuple[str, ...]]:
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        raise _err(path, "nodes", f"expected 'all' or a list of hostnames, got string {value!r}")
    if not isinstance(value, list):
        raise _err(path, "nodes", f"expected 'all' or a list of hostnames, got {type(value).__name__} {value!r}")
    if not value:
        raise _err(path, "nodes", "empty list (use 'all' for every node)")
    seen: dict[str, int] = {}
    for i, host in enumerate(value):
        if not isinstance(host, str) or not host:
            raise _err(path, f"nodes[{i}]", f"expected a non-empty hostname string, got {host!r}")
        if host in seen:
            raise _err(path, f"nodes[{i}]", f"duplicate host {host!r} (also nodes[{seen[host]}])")
        seen[host] = i
    return tuple(value)


def _parse_slot(raw: Any, index: int, path: str) -> SlotConfig:
    where = f"slots[{index}]"
    if not isinstance(raw, dict):
        raise _err(path, where, f"expected a mapping with keys {list(SLOT_KEYS)}, got {type(raw).__name__} {raw!r}")
    if not raw:
        raise _err(path, where, "empty slot: give cpus and/or gpu")
    for key in raw:
        if key not in SLOT_KEYS:
            raise _err(path, f"{where}.{key}", f"unknown key {key!r} (allowed: {', '.join(SLOT_KEYS)})")
    if "cpus" not in raw and "gpu" not in raw:
        raise _err(path, where, "slot must give cpus and/or gpu")
    cpus = parse_id_list(raw["cpus"], path, f"{where}.cpus") if "cpus" in raw else ()
    gpus = parse_id_list(raw["gpu"], path, f"{where}.gpu") if "gpu" in raw else ()
    count = raw.get("count", 1)
    if not _is_int(count) or count < 1:
        raise _err(path, f"{where}.count", f"expected a positive int, got {count!r}")
    if count > MAX_SLOT_COUNT:
        raise _err(path, f"{where}.count", f"{count} processes in one slot is over the limit of "
                                           f"{MAX_SLOT_COUNT}")
    return SlotConfig(index=index, cpus=cpus, gpus=gpus, count=count)


def _check_overlap(slots: list[SlotConfig], path: str) -> None:
    for j, b in enumerate(slots):
        for a in slots[:j]:
            common = set(a.cpus) & set(b.cpus)
            if common:
                raise _err(
                    path, f"slots[{b.index}].cpus",
                    f"cpus {format_ranges(common)} overlap with slots[{a.index}].cpus",
                )


def load_affinity_config(path: PathLike) -> AffinityConfig:
    """Read and validate an affinity config file (no allocation needed)."""
    spath = os.fspath(path)
    try:
        with open(spath, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise _err(spath, "(file)", f"cannot read file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise _err(spath, "(yaml)", f"invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise _err(spath, "(top level)", f"expected a mapping with keys {list(TOP_KEYS)}, got {type(doc).__name__}")
    for key in doc:
        if key not in TOP_KEYS:
            raise _err(spath, str(key), f"unknown key {key!r} (allowed: {', '.join(TOP_KEYS)})")
    name = _opt_str(doc, "name", spath)
    description = _opt_str(doc, "description", spath)
    vendor = _opt_str(doc, "gpu_vendor", spath)
    if vendor is not None and vendor not in GPU_VENDORS:
        raise _err(spath, "gpu_vendor", f"unknown vendor {vendor!r} (allowed: {', '.join(GPU_VENDORS)})")
    nodes = _parse_nodes(doc.get("nodes"), spath)
    if "slots" not in doc:
        raise _err(spath, "slots", "missing required key")
    raw_slots = doc["slots"]
    if not isinstance(raw_slots, list):
        raise _err(spath, "slots", f"expected a list of slots, got {type(raw_slots).__name__} {raw_slots!r}")
    if not raw_slots:
        raise _err(spath, "slots", "empty list: at least one slot is needed")
    slots = [_parse_slot(raw, i, spath) for i, raw in enumerate(raw_slots)]
    _check_overlap(slots, spath)
    return AffinityConfig(
        path=spath, slots=tuple(slots), name=name, description=description,
        gpu_vendor=vendor, nodes=nodes,
    )


def policies_from_yaml(path: PathLike, allocation: Allocation) -> list[Policy]:
    """Load ``path`` and expand it on ``allocation`` (see :meth:`AffinityConfig.policies`).

    Raises ConfigError when the file is invalid, a listed host is not in the
    allocation, or a slot's CPUs/GPUs do not exist on a selected node.
    """
    return load_affinity_config(path).policies(allocation)
