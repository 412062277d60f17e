"""PMI pass-through: a ProcessGroup whose members are one ``MPI_COMM_WORLD``.

The members are spawned together with one ``MPI_Comm_spawn_multiple``, so the
program's own ``MPI_Init`` reaches the PMIx server of the ``mpiexec`` (or
singleton DVM) that is already running: no launcher inside the launcher.

Who spawns them: a small hidden Python rank, the *proxy*. An MPI program
spawned by a parent waits in ``MPI_Finalize`` until that parent takes part in
``MPI_Comm_disconnect``, and a disconnect blocks inside MPI. The proxy does
that blocking disconnect at ``nice 19`` so neither the head nor the user's
process ever waits inside MPI, and the ranks' CPU time is not stolen. Exit
codes come from the per-rank shims, like every other member.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import sys
import threading
from typing import Optional

import cloudpickle

from ..base.waiting import Backoff, deadline_after, expired
from ..runtime import context, pmix_spawn
from ..runtime.commands import PAYLOAD_ENV, PMI_PYTHON_MODULE, SPECS_ENV, SPECS_FROM_ENV, exec_rank_command
from ..runtime.protocol import MemberSpec
from ..runtime.requests import Op
from ..topology import Placement, gpu_env

# runtime.spawn is imported where it is used: spawn imports
# mpi4py.MPI, which must not load with the package (it initialises MPI).


def _rank_spec(template, placement: Placement) -> dict:
    env = dict(template.env)
    if template.kind == "python":  # the target travels in the environment, never on a command line
        env[PAYLOAD_ENV] = base64.b64encode(template.payload).decode()
        argv = [sys.executable, "-m", PMI_PYTHON_MODULE]
    else:
        argv = list(template.argv)
    env.update(gpu_env(placement))
    if template.kind == "python":  # import the target as the spawner did
        env.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    return {
        "argv": argv,
        "cwd": template.cwd,
        "env": env,
        "cpus": list(placement.cpus) if placement.cpus else None,
        "stdout": None if template.stdout == "pipe" else template.stdout,
        "stderr": None if template.stderr == "pipe" else template.stderr,
    }


def start_pmi_world(group, slots) -> tuple[list[int], int]:
    """Spawn the world through a proxy; returns (member puids in rank order, proxy puid)."""
    from ..runtime.spawn import group_by_host  # imports mpi4py.MPI

    ctx = context.current()
    api = ctx.api
    for template, _ in slots:
        if template.stdout == "pipe" or template.stderr == "pipe":
            raise ValueError("PIPE output is not supported with pmi=True; use a file path")
    hosts = [placement.hostname for _, placement in slots]
    order = [idx for _, idxs in group_by_host(hosts) for idx in idxs]
    specs = [_rank_spec(*slots[i]) for i in order]
    set_key = api.call(Op.NEW_SET_KEY, prefix="w")
    if context.forward_output_through_head():
        # singleton runs: the head relays default output from files it tails
        for rank, spec in enumerate(specs):
            for stream in ("stdout", "stderr"):
                if spec[stream] is None:
                    spec[stream] = os.path.join(ctx.run_dir, "out", f"{set_key}.{rank}.{stream}")
    puids_ranked = api.call(Op.NEW_PUIDS, n=len(slots))
    api.call(Op.REGISTER_FOREIGN_SET, set_key=set_key, puids=puids_ranked, hosts=[hosts[i] for i in order])
    # member order for the group: slot order, mapped from rank order
    by_slot = [0] * len(slots)
    for rank, slot in enumerate(order):
        by_slot[slot] = puids_ranked[rank]

    proxy_puid = api.call(Op.NEW_PUIDS, n=1)[0]
    member = MemberSpec(
        puid=proxy_puid,
        target_kind="python",
        target=cloudpickle.dumps((proxy_main, (ctx.run_dirs, set_key, specs, [hosts[i] for i in order]),
                                  {"world_puids": puids_ranked})),
        cwd=os.getcwd(),
        env={},
        stdout=None,
        # Open MPI prints "Server not available" from the proxy's disconnect
        # once the world has finalized; launch errors still come back as a
        # RemoteError with traceback through FINISHED.
        stderr="devnull",
        cpus=None,
        gpu_env={},
        group_name=f"{group.name}-pmi-proxy",
    )
    api.call(Op.SPAWN_PYTHON, members=[member], hosts=[ctx.hostname])
    return by_slot, proxy_puid


def proxy_main(run_dirs: dict, set_key: str, specs: list, hosts: list, world_puids: Optional[list] = None) -> None:
    """Runs inside the proxy rank: start the world, as its own job with no parent.

    With a PMIx v4+ library (Open MPI) the world is started with
    ``PMIx_Spawn`` and the proxy leaves at once. Otherwise (MPICH) it is
    ``MPI_Comm_spawn`` and the proxy waits in a niced disconnect, which the
    world's ``MPI_Finalize`` needs; should the disconnect never return (a
    broken cross-node connect), the proxy leaves once every rank of the world
    has exited (orderly, through PMIx_Finalize).
    """
    from ..runtime.spawn import forwarded_env, group_by_host, spawn_exec_world  # imports mpi4py.MPI

    inherited = forwarded_env()
    for spec in specs:  # MPI defaults must be in place before the program's MPI_Init
        spec["env"] = {**inherited, **spec["env"]}
    groups = group_by_host(hosts)
    entries, first = [], 0
    for _host, idxs in groups:
        chunk = specs[first:first + len(idxs)]
        entries.append((first, base64.b64encode(json.dumps(chunk).encode()).decode()))
        first += len(idxs)
    if pmix_spawn.available():
        # no parent connection at all: the broken cross-node connect of
        # MPI_Comm_spawn is never made (see runtime/pmix_spawn.py)
        apps = []
        for (first_rank, encoded), (host, idxs) in zip(entries, groups):
            # the rank specs (environment values included) go in the shim's
            # environment, which only the user can read, not on its command line
            command, argv = exec_rank_command(sys.executable, run_dirs[host], set_key, first_rank, SPECS_FROM_ENV)
            apps.append((command, argv, {**inherited, SPECS_ENV: encoded}, len(idxs), host))
        pmix_spawn.spawn_world(apps, os.getcwd())
        return
    intercomm = spawn_exec_world(run_dirs, set_key, entries, [h for h, _ in groups], [len(i) for _, i in groups])
    os.nice(19)
    done = threading.Event()

    def disconnect() -> None:
        try:
            intercomm.Disconnect()
        except Exception:  # a rank died before MPI_Finalize; its shim recorded how
            pass
        done.set()

    threading.Thread(target=disconnect, name="mpigroup-pmi-disconnect", daemon=True).start()
    api = context.current().api
    backoff = Backoff(initial=1e-3, maximum=0.2)
    while not done.is_set():
        if world_puids and all(s.exited for s in api.call(Op.STATUS, puids=world_puids)):
            done.wait(1.0)  # a disconnect that can complete does so at once
            return
        backoff.pause()


def finish_proxy(proxy_puid: int, grace: float = 5.0) -> None:  # grace bounded by join's timeout
    """Wait briefly for the proxy to leave on its own, then make sure it is gone."""
    api = context.current().api
    deadline = deadline_after(grace)
    while not expired(deadline):
        if api.call(Op.STATUS, puids=[proxy_puid])[0].exited:
            return
        api.wait_change(0.05)
    api.call(Op.SIGNAL, puids=[proxy_puid], signum=signal.SIGKILL)
