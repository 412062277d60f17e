"""Turn resolved policies into concrete placements on an allocation.

Pure: no MPI, no I/O. The launcher calls :func:`evaluate` once for a whole
batch of processes *before* spawning anything, so a bad policy (unknown host,
CPU or GPU the node does not have) fails the batch with a clear
:class:`~mpigroup.errors.PolicyError` and nothing is started.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from mpigroup.errors import PolicyError
from mpigroup.policy.policy import Policy
from mpigroup.topology import Allocation, NodeDesc, Placement

__all__ = ["evaluate", "hostname_policies", "gpu_policies", "format_ranges"]

_P = Policy.Placement
_D = Policy.Distribution


def format_ranges(ids: Iterable[int]) -> str:
    """Compact text for an id set, e.g. ``[0,1,2,3,8]`` -> ``"0-3,8"``.

    Used in error messages so a 104-CPU node does not print 104 numbers.
    """
    values = sorted(set(ids))
    if not values:
        return "(none)"
    parts = []
    start = prev = values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(parts)


class _Chooser:
    """Node choice for processes without a fixed node (ANYWHERE / DEFAULT).

    ROUNDROBIN and BLOCK keep separate counters: each counts only the processes
    that use it. BLOCK gives each node as many consecutive processes as it has
    CPUs (at least one), then moves on, wrapping after the last node.
    Processes pinned to a node by HOST_NAME/HOST_ID/LOCAL do not count.
    """

    def __init__(self, allocation: Allocation) -> None:
        self.nodes = allocation.nodes
        self.rr = 0
        self.block = 0
        self.capacity = [max(1, n.num_cpus) for n in self.nodes]

    def choose(self, distribution: Policy.Distribution) -> NodeDesc:
        if distribution is _D.BLOCK:
            pos = self.block % sum(self.capacity)
            self.block += 1
            for node, cap in zip(self.nodes, self.capacity):
                if pos < cap:
                    return node
                pos -= cap
            raise AssertionError("unreachable")  # pragma: no cover
        node = self.nodes[self.rr % len(self.nodes)]
        self.rr += 1
        return node


def _node_for(
    index: int,
    policy: Policy,
    allocation: Allocation,
    local_hostname: str,
    chooser: _Chooser,
) -> NodeDesc:
    where = f"policy[{index}] {policy!r}"
    if not allocation.nodes:
        raise PolicyError(f"{where}: the allocation has no nodes")
    placement = policy.placement
    if placement is _P.HOST_NAME:
        try:
            return allocation.by_hostname(policy.host_name)
        except KeyError:
            raise PolicyError(
                f"{where}: host {policy.host_name!r} is not in the allocation "
                f"(hosts: {allocation.hostnames})"
            ) from None
    if placement is _P.HOST_ID:
        try:
            return allocation.by_id(policy.host_id)
        except KeyError:
            ids = [n.host_id for n in allocation.nodes]
            raise PolicyError(
                f"{where}: host_id {policy.host_id} is not in the allocation "
                f"(host_ids: {ids}, hosts: {allocation.hostnames})"
            ) from None
    if placement is _P.LOCAL:
        try:
            return allocation.by_hostname(local_hostname)
        except KeyError:
            raise PolicyError(
                f"{where}: LOCAL placement but the local host {local_hostname!r} is not in "
                f"the allocation (hosts: {allocation.hostnames})"
            ) from None
    return chooser.choose(policy.distribution)  # ANYWHERE / DEFAULT


def _check_ids(index: int, policy: Policy, node: NodeDesc, kind: str) -> None:
    wanted = policy.cpu_affinity if kind == "cpu" else policy.gpu_affinity
    have = node.cpus if kind == "cpu" else node.gpus
    missing = [i for i in wanted if i not in have]
    if missing:
        raise PolicyError(
            f"policy[{index}] {policy!r}: {kind}(s) {missing} not on host {node.hostname!r} "
            f"(host_id {node.host_id}); its {kind}s are {format_ranges(have)}"
        )


def evaluate(
    policies: Sequence[Policy], allocation: Allocation, local_hostname: str
) -> list[Placement]:
    """One :class:`Placement` per policy, in order.

    ``policies`` must already be resolved (see
    :func:`~mpigroup.policy.policy.resolve_policy`). Node choice:
    ``HOST_NAME``/``HOST_ID`` pick that node, ``LOCAL`` picks ``local_hostname``,
    ``ANYWHERE``/``DEFAULT`` follow the distribution (``ROUNDROBIN`` unless
    ``BLOCK``). CPU/GPU affinities must exist on the chosen node; an empty
    affinity gives ``None`` (no binding / GPU visibility untouched).

    Raises PolicyError for the first bad policy; nothing is returned then.
    """
    chooser = _Chooser(allocation)
    result: list[Placement] = []
    for index, policy in enumerate(policies):
        if not isinstance(policy, Policy):
            raise PolicyError(f"policy[{index}] is not a Policy: {policy!r}")
        node = _node_for(index, policy, allocation, local_hostname, chooser)
        _check_ids(index, policy, node, "cpu")
        _check_ids(index, policy, node, "gpu")
        result.append(
            Placement(
                hostname=node.hostname,
                host_id=node.host_id,
                cpus=tuple(policy.cpu_affinity) or None,
                gpus=tuple(policy.gpu_affinity) or None,
                gpu_vendor=node.gpu_vendor,
            )
        )
    return result


def hostname_policies(allocation: Allocation) -> list[Policy]:
    """One ``HOST_NAME`` policy per node, in allocation order (one process per node)."""
    return [Policy(placement=_P.HOST_NAME, host_name=n.hostname) for n in allocation.nodes]


def gpu_policies(allocation: Allocation) -> list[Policy]:
    """One policy per (node, GPU): ``HOST_NAME`` on the node, ``gpu_affinity=[gpu]``.

    Nodes without GPUs contribute nothing.
    """
    return [
        Policy(placement=_P.HOST_NAME, host_name=n.hostname, gpu_affinity=[g])
        for n in allocation.nodes
        for g in n.gpus
    ]
