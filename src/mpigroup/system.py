"""System and Node: the allocation as the runtime sees it (Dragon names)."""
from __future__ import annotations

from typing import Union

from .policy import Policy, gpu_policies, hostname_policies
from .runtime import context
from .topology import Allocation, NodeDesc


def current_allocation() -> Allocation:
    """The allocation of the running runtime (starts an embedded head if needed)."""
    return context.current().allocation


class Node:
    """One node: ``Node(host_id)`` or ``Node("hostname")``."""

    def __init__(self, ident: Union[int, str]) -> None:
        allocation = current_allocation()
        try:
            self._desc: NodeDesc = allocation.by_id(ident) if isinstance(ident, int) else allocation.by_hostname(ident)
        except KeyError:
            raise KeyError(f"no node {ident!r} in the allocation {allocation.hostnames}") from None

    h_uid = property(lambda self: self._desc.host_id)
    host_id = property(lambda self: self._desc.host_id)
    hostname = property(lambda self: self._desc.hostname)
    name = property(lambda self: self._desc.hostname)
    num_cpus = property(lambda self: self._desc.num_cpus)
    cpus = property(lambda self: list(self._desc.cpus))
    num_gpus = property(lambda self: self._desc.num_gpus)
    gpus = property(lambda self: list(self._desc.gpus))
    gpu_vendor = property(lambda self: self._desc.gpu_vendor)
    physical_mem = property(lambda self: self._desc.physical_mem)

    def __repr__(self) -> str:
        d = self._desc
        return f"Node({d.host_id}, {d.hostname!r}, cpus={d.num_cpus}, gpus={d.num_gpus} {d.gpu_vendor or ''})"


class System:
    """The whole allocation: ``nnodes``, ``nodes`` and policy helpers."""

    def __init__(self) -> None:
        self._allocation = current_allocation()

    @property
    def nnodes(self) -> int:
        return len(self._allocation.nodes)

    @property
    def nodes(self) -> list[int]:
        """Node ids (pass one to :class:`Node`)."""
        return [n.host_id for n in self._allocation.nodes]

    def hostname_policies(self) -> list[Policy]:
        return hostname_policies(self._allocation)

    def gpu_policies(self) -> list[Policy]:
        return gpu_policies(self._allocation)

    def __repr__(self) -> str:
        return f"System(nnodes={self.nnodes}, hosts={self._allocation.hostnames})"


def cpu_count() -> int:
    """Usable CPUs over the whole allocation, not just this node."""
    return current_allocation().total_cpus
