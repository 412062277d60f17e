"""Detect the batch allocation (Slurm, PBS or the local machine) from env vars.

The launcher sizes ``mpiexec`` from this, never from ``os.cpu_count()`` on the
head: the head node is only one of the allocated nodes.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from typing import Mapping, Optional

from .hostlist import expand_hostlist

__all__ = ["BatchAllocation", "detect_allocation", "parse_slurm_cpus_per_node"]

_CPUS_ITEM = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


@dataclass
class BatchAllocation:
    """Hosts and slots granted by the batch system (or the local machine)."""

    kind: str  # "slurm" | "pbs" | "local"
    hosts: list[str]
    slots_per_host: dict[str, int] = field(default_factory=dict)
    job_id: Optional[str] = None

    @property
    def num_hosts(self) -> int:
        return len(self.hosts)

    def host_spec(self) -> str:
        """``h1:S1,h2:S2`` as understood by ``mpiexec --host``."""
        return ",".join(f"{h}:{self.slots_per_host.get(h, 1)}" for h in self.hosts)


def parse_slurm_cpus_per_node(value: str) -> list[int]:
    """Expand ``SLURM_JOB_CPUS_PER_NODE`` (``36(x2),72`` -> [36, 36, 72])."""
    out: list[int] = []
    for part in value.replace(" ", "").split(","):
        m = _CPUS_ITEM.match(part)
        if not m:
            raise ValueError(f"malformed SLURM_JOB_CPUS_PER_NODE {value!r}")
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return out


def _unique(hosts: list[str]) -> list[str]:
    return list(dict.fromkeys(hosts))


def _detect_slurm(env: Mapping[str, str]) -> BatchAllocation:
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        raise ValueError(
            "SLURM_JOB_ID is set but neither SLURM_JOB_NODELIST nor SLURM_NODELIST is"
        )
    try:
        hosts = _unique(expand_hostlist(nodelist))
    except ValueError as exc:
        raise ValueError(f"malformed Slurm node list: {exc}") from None
    cpus = env.get("SLURM_JOB_CPUS_PER_NODE")
    if cpus:
        counts = parse_slurm_cpus_per_node(cpus)
        if len(counts) != len(hosts):
            raise ValueError(
                f"SLURM_JOB_CPUS_PER_NODE {cpus!r} gives {len(counts)} counts "
                f"for {len(hosts)} hosts in {nodelist!r}"
            )
        slots = dict(zip(hosts, counts))
    else:
        per = env.get("SLURM_CPUS_ON_NODE", "1")
        try:
            n = int(per)
        except ValueError:
            raise ValueError(f"malformed SLURM_CPUS_ON_NODE {per!r}") from None
        slots = {h: n for h in hosts}
    return BatchAllocation("slurm", hosts, slots, env.get("SLURM_JOB_ID"))


def _detect_pbs(env: Mapping[str, str]) -> BatchAllocation:
    path = env["PBS_NODEFILE"]
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh]
    except OSError as exc:
        raise ValueError(f"cannot read PBS_NODEFILE {path!r}: {exc.strerror}") from None
    slots: dict[str, int] = {}
    for ln in lines:
        if ln and not ln.startswith("#"):
            slots[ln] = slots.get(ln, 0) + 1  # dict keeps first-appearance order
    if not slots:
        raise ValueError(f"PBS_NODEFILE {path!r} lists no hosts")
    return BatchAllocation("pbs", list(slots), slots, env.get("PBS_JOBID"))


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def detect_allocation(env: Mapping[str, str]) -> BatchAllocation:
    """Return the allocation described by ``env``: Slurm, then PBS, else local."""
    if env.get("SLURM_JOB_ID"):
        return _detect_slurm(env)
    if env.get("PBS_NODEFILE"):
        return _detect_pbs(env)
    host = socket.gethostname()
    return BatchAllocation("local", [host], {host: _local_cpus()}, None)
