"""Placement policies, mirroring ``dragon.infrastructure.policy.Policy``.

A :class:`Policy` says *where* a process should run (which node, which CPUs,
which GPUs). It is plain, picklable data: no MPI is imported anywhere in
``mpigroup.policy`` so policies can be built and checked in any process.

Where a process's effective policy comes from
---------------------------------------------
:func:`resolve_policy` merges up to five sources. Highest precedence first:

1. the ``explicit`` policy passed for this one process;
2. the process *template* policy (e.g. ``ProcessTemplate(policy=...)``);
3. the process *group* policy (e.g. ``ProcessGroup(policy=...)``) -- the
   template is the more specific of the two, so it wins over the group, as in
   Dragon where the group policy is merged with each template's policy;
4. the ``with Policy(...):`` stack (inner blocks win over outer blocks);
5. the global default (:func:`set_global_policy`, ``Policy()`` unless set).

"Wins" means :meth:`Policy.merge`: each field that the higher source *sets*
(i.e. that differs from its default) replaces the lower one; unset fields fall
through to lower sources.

The ``with`` stack and the global default are module-level state and therefore
per *process* (not per thread): entering ``with Policy(...)`` in one thread is
visible to the other threads of that process, and never to other processes.
"""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Optional, Union

from mpigroup.errors import PolicyError
from mpigroup.runtime import context  # the layer below; it loads MPI only when a runtime starts

if TYPE_CHECKING:  # pragma: no cover
    from mpigroup.topology import Allocation

__all__ = [
    "Policy",
    "resolve_policy",
    "current_with_policy",
    "set_global_policy",
    "get_global_policy",
]


def _is_int(value: Any) -> bool:
    """True for real ints; bool is rejected on purpose (``True`` is not a CPU)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_id_list(name: str, value: Any) -> list[int]:
    """Validate a CPU/GPU id list and return it as a fresh ``list[int]``."""
    if not isinstance(value, (list, tuple)):
        raise PolicyError(
            f"Policy.{name} must be a list of non-negative ints, got {type(value).__name__} {value!r}"
        )
    bad = [v for v in value if not _is_int(v) or v < 0]
    if bad:
        raise PolicyError(
            f"Policy.{name} must be a list of non-negative ints, got invalid entries {bad!r} in {list(value)!r}"
        )
    dups = sorted({v for v in value if list(value).count(v) > 1})
    if dups:
        raise PolicyError(f"Policy.{name} has duplicate entries {dups} in {list(value)!r}")
    return list(value)


@dataclass(eq=True)
class Policy:
    """Where a process runs: node choice, distribution, CPU and GPU affinity.

    Fields (defaults mean "not set", so :meth:`merge` lets lower sources fill
    them in):

    - ``placement``: how the node is chosen (:class:`Policy.Placement`).
    - ``host_name`` / ``host_id``: the node for ``HOST_NAME`` / ``HOST_ID``.
    - ``distribution``: how ``ANYWHERE``/``DEFAULT`` processes spread over nodes.
    - ``cpu_affinity``: CPUs the process is bound to (empty: no binding).
    - ``gpu_affinity``: GPUs the process may see (empty: leave visibility alone).

    Convenience: when ``placement`` is ``DEFAULT`` and ``host_name`` is given,
    the placement becomes ``HOST_NAME``; otherwise when ``host_id`` is given it
    becomes ``HOST_ID`` (``host_name`` is checked first). So
    ``Policy(host_name="n1")`` means "on n1".

    Equality is by value. Policies hold lists, so they are not hashable.
    """

    class Placement(enum.Enum):
        """How the node of a process is chosen (values as in Dragon)."""

        LOCAL = -5  # the node of the process that evaluates the policy
        ANYWHERE = -4  # any node, chosen by the distribution
        HOST_NAME = -3  # the node named by ``host_name``
        HOST_ID = -2  # the node whose ``host_id`` matches
        DEFAULT = -1  # not set: falls back to lower sources, then distribution

    class Distribution(enum.Enum):
        """How processes with no fixed node spread over the allocation."""

        ROUNDROBIN = 1  # one per node in turn
        BLOCK = 2  # fill a node (one per CPU) before the next
        DEFAULT = 3  # not set: ROUNDROBIN after resolution

    placement: "Policy.Placement" = Placement.DEFAULT
    host_name: str = ""
    host_id: int = -1
    distribution: "Policy.Distribution" = Distribution.DEFAULT
    cpu_affinity: list[int] = field(default_factory=list)
    gpu_affinity: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.placement, Policy.Placement):
            raise PolicyError(
                f"Policy.placement must be a Policy.Placement, got {self.placement!r}"
            )
        if not isinstance(self.distribution, Policy.Distribution):
            raise PolicyError(
                f"Policy.distribution must be a Policy.Distribution, got {self.distribution!r}"
            )
        if not isinstance(self.host_name, str):
            raise PolicyError(
                f"Policy.host_name must be a str, got {type(self.host_name).__name__} {self.host_name!r}"
            )
        if not _is_int(self.host_id):
            raise PolicyError(
                f"Policy.host_id must be an int, got {type(self.host_id).__name__} {self.host_id!r}"
            )
        if self.host_id < -1:
            raise PolicyError(f"Policy.host_id must be >= 0 (or -1 for unset), got {self.host_id}")
        self.cpu_affinity = _check_id_list("cpu_affinity", self.cpu_affinity)
        self.gpu_affinity = _check_id_list("gpu_affinity", self.gpu_affinity)

        if self.placement is Policy.Placement.DEFAULT:
            if self.host_name:
                self.placement = Policy.Placement.HOST_NAME
            elif self.host_id != -1:
                self.placement = Policy.Placement.HOST_ID
        if self.placement is Policy.Placement.HOST_NAME and not self.host_name:
            raise PolicyError("Policy.placement is HOST_NAME but host_name is empty")
        if self.placement is Policy.Placement.HOST_ID and self.host_id < 0:
            raise PolicyError("Policy.placement is HOST_ID but host_id is not set (>= 0)")

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        """Show only the fields that are set, e.g. ``Policy(host_name='n1')``."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == _DEFAULTS[f.name]:
                continue
            if isinstance(value, enum.Enum):
                parts.append(f"{f.name}=Policy.{type(value).__name__}.{value.name}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Policy({', '.join(parts)})"

    # ----------------------------------------------------------------- merge
    def is_set(self, name: str) -> bool:
        """True when field ``name`` differs from its default (so it overrides)."""
        return getattr(self, name) != _DEFAULTS[name]

    @staticmethod
    def merge(low: Optional["Policy"], high: Optional["Policy"]) -> "Policy":
        """Combine two policies: every field ``high`` sets overrides ``low``.

        "Set" means different from the field's default (``DEFAULT`` enums, empty
        host name, ``host_id == -1``, empty affinity lists). Either side may be
        ``None``. Returns a new Policy; the inputs are not modified.
        """
        if low is None and high is None:
            return Policy()
        if low is None:
            low = Policy()
        if high is None:
            high = Policy()
        for p in (low, high):
            if not isinstance(p, Policy):
                raise PolicyError(f"Policy.merge expects Policy objects, got {p!r}")
        values = {}
        for f in fields(Policy):
            src = high if high.is_set(f.name) else low
            value = getattr(src, f.name)
            values[f.name] = list(value) if isinstance(value, list) else value
        return Policy(**values)

    # ------------------------------------------------------ context manager
    def __enter__(self) -> "Policy":
        """Push this policy on the per-process ``with`` stack."""
        _POLICY_STACK.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        """Pop this policy (by identity, so mis-nested exits stay consistent)."""
        for i in range(len(_POLICY_STACK) - 1, -1, -1):
            if _POLICY_STACK[i] is self:
                del _POLICY_STACK[i]
                return

    @classmethod
    def current(cls) -> Optional["Policy"]:
        """Merge of the ``with`` stack (inner wins), or None outside any ``with``."""
        return current_with_policy()

    @classmethod
    def global_policy(cls) -> "Policy":
        """The process-wide default policy (same as :func:`get_global_policy`)."""
        return get_global_policy()

    # ------------------------------------------------------------------ yaml
    @classmethod
    def from_yaml(
        cls,
        path: Union[str, "os.PathLike[str]"],
        allocation: Optional["Allocation"] = None,
    ) -> list["Policy"]:
        """Policies described by a YAML affinity config (see ``configs/README.md``).

        Returns one ``HOST_NAME`` policy per slot (times its ``count``) for each
        selected node. Without ``allocation`` the runtime's current allocation is
        used (asking the runtime for it starts an embedded head if none runs).
        """
        # yaml_config imports this module (and PyYAML): imported here to break the cycle
        from mpigroup.policy.yaml_config import policies_from_yaml

        if allocation is None:
            allocation = context.current().allocation
        return policies_from_yaml(path, allocation)


_DEFAULTS: dict[str, Any] = {
    "placement": Policy.Placement.DEFAULT,
    "host_name": "",
    "host_id": -1,
    "distribution": Policy.Distribution.DEFAULT,
    "cpu_affinity": [],
    "gpu_affinity": [],
}

# Per-process state (module globals, shared by all threads of a process).
_POLICY_STACK: list[Policy] = []
_GLOBAL_POLICY: Policy = Policy()


def current_with_policy() -> Optional[Policy]:
    """Merge of the active ``with Policy(...)`` blocks, outer first, inner wins.

    Returns None when no ``with`` block is active.
    """
    if not _POLICY_STACK:
        return None
    result = Policy()
    for p in _POLICY_STACK:
        result = Policy.merge(result, p)
    return result


def set_global_policy(policy: Optional[Policy]) -> None:
    """Set the process-wide default policy; ``None`` resets it to ``Policy()``."""
    global _GLOBAL_POLICY
    if policy is None:
        policy = Policy()
    if not isinstance(policy, Policy):
        raise PolicyError(f"set_global_policy expects a Policy or None, got {policy!r}")
    _GLOBAL_POLICY = policy


def get_global_policy() -> Policy:
    """The process-wide default policy (``Policy()`` unless set)."""
    return _GLOBAL_POLICY


_LIVE = object()


def resolve_policy(
    explicit: Optional[Policy] = None,
    group: Optional[Policy] = None,
    template: Optional[Policy] = None,
    with_policy: Any = _LIVE,
) -> Policy:
    """The effective policy of one process, merging every source.

    Precedence, highest first: ``explicit``; then ``template``; then ``group``
    (the template is more specific, so it overrides the group); then the merged
    ``with Policy(...)`` stack (inner wins); then the global default. Each level
    only overrides the fields it sets (see :meth:`Policy.merge`). Always returns
    a Policy, never None.

    ``with_policy`` is the ``with`` stack as captured when the object was
    created (ProcessTemplate captures it); by default the live stack is used.
    ``explicit`` is for callers that place a process themselves (library
    code); the public classes pass their policies as group and template.
    """
    result = get_global_policy()
    stack = current_with_policy() if with_policy is _LIVE else with_policy
    for layer in (stack, group, template, explicit):
        if layer is None:
            continue
        if not isinstance(layer, Policy):
            raise PolicyError(f"resolve_policy expects Policy objects or None, got {layer!r}")
        result = Policy.merge(result, layer)
    return Policy.merge(None, result)  # always a fresh copy, never the global itself
