"""Placement policies (Dragon-compatible ``Policy``), their evaluation and YAML configs.

Pure Python: nothing in this package imports MPI, so policies can be built,
merged, pickled and checked against an :class:`~mpigroup.topology.Allocation`
in any process (and in unit tests).
"""
from mpigroup.policy.evaluate import evaluate, gpu_policies, hostname_policies
from mpigroup.policy.policy import (
    Policy,
    current_with_policy,
    get_global_policy,
    resolve_policy,
    set_global_policy,
)
from mpigroup.policy.yaml_config import (
    AffinityConfig,
    SlotConfig,
    load_affinity_config,
    policies_from_yaml,
)

__all__ = [
    "Policy",
    "evaluate",
    "resolve_policy",
    "hostname_policies",
    "gpu_policies",
    "policies_from_yaml",
    "load_affinity_config",
    "set_global_policy",
    "get_global_policy",
    "current_with_policy",
    "AffinityConfig",
    "SlotConfig",
]
