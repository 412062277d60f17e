"""Pure description of the machine the runtime sees: nodes and the allocation.

No MPI here. The head fills an :class:`Allocation` at bootstrap from what every
initial rank reports about its own node; policy evaluation and the launcher
consume it. Keeping it plain data lets policy logic be unit-tested anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence


@dataclass(frozen=True)
class NodeDesc:
    """One node of the allocation as the runtime sees it."""

    host_id: int
    hostname: str
    cpus: tuple[int, ...]
    gpus: tuple[int, ...] = ()
    gpu_vendor: Optional[str] = None  # "nvidia", "amd", "intel" or None
    physical_mem: int = 0  # bytes

    @property
    def num_cpus(self) -> int:
        return len(self.cpus)

    @property
    def num_gpus(self) -> int:
        return len(self.gpus)


@dataclass(frozen=True)
class Allocation:
    """The ordered set of nodes a run may place processes on."""

    nodes: tuple[NodeDesc, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [n.hostname for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate hostnames in allocation: {names}")

    @classmethod
    def of(cls, nodes: Sequence[NodeDesc]) -> "Allocation":
        return cls(tuple(nodes))

    @property
    def hostnames(self) -> list[str]:
        return [n.hostname for n in self.nodes]

    def by_hostname(self, hostname: str) -> NodeDesc:
        for node in self.nodes:
            if node.hostname == hostname:
                return node
        raise KeyError(hostname)

    def by_id(self, host_id: int) -> NodeDesc:
        for node in self.nodes:
            if node.host_id == host_id:
                return node
        raise KeyError(host_id)

    @property
    def total_cpus(self) -> int:
        return sum(n.num_cpus for n in self.nodes)


@dataclass(frozen=True)
class Placement:
    """Where one process runs: the result of evaluating a policy."""

    hostname: str
    host_id: int
    cpus: Optional[tuple[int, ...]] = None  # None: no binding, inherit
    gpus: Optional[tuple[int, ...]] = None  # None: leave GPU visibility alone
    gpu_vendor: Optional[str] = None


GPU_ENV_BY_VENDOR = {
    "nvidia": "CUDA_VISIBLE_DEVICES",
    "amd": "ROCR_VISIBLE_DEVICES",
    "intel": "ZE_AFFINITY_MASK",
}


def gpu_env(placement: Placement) -> dict[str, str]:
    """Environment that restricts a process to the placement's GPUs."""
    if placement.gpus is None:
        return {}
    var = GPU_ENV_BY_VENDOR.get(placement.gpu_vendor or "nvidia", "CUDA_VISIBLE_DEVICES")
    return {var: ",".join(str(g) for g in placement.gpus)}
