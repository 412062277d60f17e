"""``MPI_Comm_spawn_multiple`` with the runtime's placement and environment.

One command entry per host: the spawn info ``host`` key pins the entry's
ranks to that node; ``map_by=:OVERSUBSCRIBE`` lets more ranks than cores run
(2-core laptops, CI); ``bind_to=none`` leaves binding to the rank itself,
which applies the policy's CPU list with ``os.sched_setaffinity``.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from mpi4py import MPI

from ..base.mpienv import LOCAL_DEFAULTS, MPI_DEFAULTS
from .commands import exec_rank_command, python_rank_command


def forwarded_env() -> dict[str, str]:
    """Variables every spawned rank must see before its MPI_Init.

    mpigroup's MPI defaults (as set in this process, so user values win) and
    the user's ``MPIGROUP_*``/``PYTHONPATH``. They are passed explicitly
    because a spawned job's environment comes from the PRRTE daemon, which
    may have started before the head applied its defaults. Open MPI's own
    internal ``OMPI_MCA_*`` variables of this process are never copied.
    """
    names = {row[0] for row in MPI_DEFAULTS + LOCAL_DEFAULTS} | {"PYTHONPATH", "OPAL_PREFIX", "PATH"}
    own = {"MPIGROUP_PUID", "MPIGROUP_NODE"}  # set per process
    return {
        k: v for k, v in os.environ.items()
        if k in names or (k.startswith("MPIGROUP_") and k not in own)
    }


def _info_for_host(host: str, first: bool = True) -> MPI.Info:
    """Spawn info of one command entry.

    ``map_by`` and ``bind_to`` are directives for the whole job in PRRTE: set
    on a second entry they conflict with the first ("Conflicting directives",
    ``MPI_ERR_UNKNOWN``), even with the same value. So only the first entry
    carries them.
    """
    info = MPI.Info.Create()
    info.Set("host", host)
    if first:
        info.Set("map_by", ":OVERSUBSCRIBE")
        info.Set("bind_to", "none")
    return info


def group_by_host(hosts: Sequence[str]) -> list[tuple[str, list[int]]]:
    """[(host, [indices])] in order of first appearance: one spawn entry each."""
    groups: dict[str, list[int]] = {}
    for idx, host in enumerate(hosts):
        groups.setdefault(host, []).append(idx)
    return list(groups.items())


def _spawn(commands, argvs, counts, infos) -> Any:
    try:
        return MPI.COMM_SELF.Spawn_multiple(commands, argvs, counts, infos)
    finally:
        for info in infos:
            info.Free()


def spawn_python_set(head, set_key: str, members: Sequence[Any], hosts: Sequence[str]):
    """Spawn Python worker ranks; returns (intercomm, member index per rank)."""
    env_args = [f"{k}={v}" for k, v in sorted(forwarded_env().items())]
    groups = group_by_host(hosts)
    order = [idx for _, idxs in groups for idx in idxs]
    head_at = f"{head.hostname}:{os.getpid()}"
    commands = [python_rank_command(sys.executable, head.run_dirs.get(host, head.run_dir), set_key, head_at, env_args)
                for host, _ in groups]
    ic = _spawn(
        [command for command, _ in commands],
        [argv for _, argv in commands],
        [len(idxs) for _, idxs in groups],
        [_info_for_host(host, i == 0) for i, (host, _) in enumerate(groups)],
    )
    return ic, order


def spawn_exec_world(run_dirs: dict, set_key: str, entries, hosts: Sequence[str], counts: Sequence[int]):
    """Spawn an MPI executable as one MPI_COMM_WORLD, one entry per host.

    ``entries`` holds, per host, (first world rank, encoded rank specs) for
    the Python shim that starts each rank.
    """
    commands, argvs = [], []
    for (first, encoded), host in zip(entries, hosts):
        command, argv = exec_rank_command(sys.executable, run_dirs[host], set_key, first, encoded)
        commands.append(command)
        argvs.append(argv)
    return _spawn(commands, argvs, list(counts), [_info_for_host(h, i == 0) for i, h in enumerate(hosts)])
