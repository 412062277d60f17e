"""Membership of shared objects: one growing communicator and arena window per run.

Answer to design.md question 1 (measured in docs/architecture.md):

* Every Queue, Event, Lock ... is a block of one *arena* window that the head
  exposes (``MPI_Win_allocate``; on one node Open MPI's osc/sm, so no
  operation needs progress from the head or anyone else).
* A window's membership is fixed, so the window lives over a *universe*
  communicator that grows: a process joins when it first needs shared objects
  (a spawned set whose arguments carry a handle joins as a whole at boot; any
  other process joins alone on first use). Joining is one *growth step*:
  ``MPI_Comm_accept`` by the current members and ``MPI_Comm_connect`` by the
  newcomers, a merge, a new arena window, and a copy of the used part of the
  arena by the head.
* Every member runs a light *service thread* that takes part in these steps
  while its main thread runs user code or sleeps. Steps are fenced by a
  process-local lock that every shared-object operation holds (briefly, never
  while waiting), so no operation sees a window being replaced.
* Leaving takes no step: a worker that exits (:func:`leave`) sends its pending
  reference drops and stops using the window, nothing collective. Each growth
  step starts with ULFM's ``MPI_Comm_shrink`` over the current members, which
  drops every process that has exited since, normally or not; the old window,
  whose collective free the departed can no longer join, is then left
  allocated until the run ends.

Handles name (arena offset, generation), never windows, so they stay valid
across steps.
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading
import time
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ..base import config, sharing, shutdown
from ..base.shutdown import Stage
from ..base.waiting import Backoff
from ..errors import LeftUniverse, SharedObjectError
from ..runtime import context
from . import bells as doorbells
from .mpi import MPI
from .relayed import RelayedUniverse

log = logging.getLogger(__name__)

TAG_STEP = 41  # head -> member, on the universe communicator: a StepMessage
HEAD = 0  # the head is rank 0 of every universe communicator
STEP_TIMEOUT = 120.0


class StepMessage(NamedTuple):
    """Head -> member (``TAG_STEP``): take part in the growth step whose newcomers connect to ``port``."""

    port: str


def arena_bytes() -> int:
    """Size of the head's arena window (``MPIGROUP_ARENA_BYTES``, default 256 MiB; SettingError if bad)."""
    return config.get("MPIGROUP_ARENA_BYTES")


def backoff(spin: Optional[float] = None, yield_cpu: Optional[bool] = None) -> Backoff:
    """The wait of every shared-object operation: spin, then sleep from 20 µs doubling to 1 ms
    (on another host than the head, where each poll is a round trip to it: no spin, 50 µs to 2 ms).

    The spin, ``MPIGROUP_SPIN_US`` unless ``spin`` (seconds) is given, yields
    the CPU at each step with ``MPIGROUP_SPIN_YIELD``; it keeps round trips in
    the microseconds while the other side is active. The sleeps keep idle
    waiters cheap (on 2 cores, 8 waiters must not starve the workers).
    """
    if _universe is not None and _universe.remote:  # each poll is a round trip to the head: no spin
        return Backoff(spin=0.0, initial=50e-6, maximum=2e-3)
    if spin is None:
        spin = config.cached("MPIGROUP_SPIN_US") * 1e-6
    if yield_cpu is None:
        yield_cpu = config.cached("MPIGROUP_SPIN_YIELD")
    return Backoff(spin=spin, initial=20e-6, maximum=1e-3, yield_cpu=yield_cpu)


WAIT_CAP = 0.05  # longest sleep on a doorbell: deadlines, dead peers and owners are checked this often


def waiter(bell: int, spin: Optional[float] = None, yield_cpu: Optional[bool] = None) -> Any:
    """The wait of a loop that waits for a shared object to change: spin, then sleep on its doorbell.

    The spin is as :func:`backoff`'s (``spin`` seconds and ``yield_cpu``
    override the settings); then the waiter sleeps in the kernel
    until a process that changes the object rings its bell
    (:mod:`.bells`), for at most :data:`WAIT_CAP` seconds. Where there
    are no bells (another host than the head's, or no futex), this is
    :func:`backoff`.
    """
    uni = _universe
    if uni is None or uni.remote or uni.bells is None:
        return backoff(spin, yield_cpu)
    if spin is None:
        spin = config.cached("MPIGROUP_SPIN_US") * 1e-6
    if yield_cpu is None:
        yield_cpu = config.cached("MPIGROUP_SPIN_YIELD")
    return doorbells.Wait(uni.bells, bell, _fence, spin, yield_cpu, WAIT_CAP, None)


def _fence() -> None:
    """A full memory barrier (``MPI_Win_flush``: ``opal_atomic_mb`` for a shared-memory window)."""
    uni = current()
    with uni.lock:
        uni.win.Flush(HEAD)


def poll_collective(request: MPI.Request, what: str, timeout: float = STEP_TIMEOUT) -> None:
    """Complete a non-blocking collective without spinning a core in MPI."""
    wait = Backoff(spin=0.0, initial=20e-6, maximum=5e-3)
    deadline = time.monotonic() + timeout
    while not request.Test():
        if time.monotonic() > deadline:
            raise TimeoutError(f"mpigroup universe: {what} did not complete within {timeout} s")
        wait.pause()


def allocate_window(size: int, comm: MPI.Intracomm) -> MPI.Win:
    """``MPI_Win_allocate`` without Open MPI's per-window ULFM warning.

    With fault tolerance on (``mpi_ft_enable``, which mpigroup needs so that
    a dead worker is an event, not a job abort), Open MPI prints an 8-line
    "osc/sm is not tested for post-failure operation" notice for every window
    it creates. It is a statement about the component, not about this
    window, and mpigroup's use does not depend on osc/sm's failure handling:
    only shared ``lock_all`` epochs and atomics are used (no exclusive MPI
    locks a dead process could hold), and the windows of a dead member are
    abandoned, never freed collectively. So the flag that gates the notice
    (``ompi_ftmpi_enabled``) is cleared for the duration of the call only.
    """
    flag = _ft_flag()
    if flag is not None and flag.value:
        flag.value = False
        try:
            win = _allocate(size, comm)
        finally:
            flag.value = True
    else:
        win = _allocate(size, comm)
    win.Set_errhandler(MPI.ERRORS_RETURN)  # windows default to ERRORS_ARE_FATAL: raise instead
    return win


_shared_refused: Optional[str] = None  # why MPI_Win_allocate_shared was refused once (then never tried again)


def _allocate(size: int, comm: MPI.Intracomm) -> MPI.Win:
    """``MPI_Win_allocate_shared`` (every member is on the head's host), else ``MPI_Win_allocate``.

    A shared window gives each member the head's memory at an address of its
    own (``MPI_Win_shared_query``), so reads and data copies need no MPI call
    (:func:`direct_memory`). MPICH refuses shared windows across spawned
    worlds; then the arena is a plain window and every access is an RMA call.
    The choice is collective and the same for every step of a run.
    """
    global _shared_refused
    if _shared_refused is None:
        try:
            return MPI.Win.Allocate_shared(size, 1, comm=comm)
        except MPI.Exception as exc:
            _shared_refused = str(exc)
            log.warning("MPI_Win_allocate_shared refused (%s): the arena is a plain window, "
                        "and every access to it is an RMA call", exc)
    return MPI.Win.Allocate(size, 1, comm=comm)


# Reads and copies straight from the shared window stand in for MPI_Get/MPI_Put/atomic loads
# only where the memory model orders them as the RMA calls did: x86-64 (TSO: loads are not
# reordered with loads, stores not with stores; every RMA atomic here is a locked
# instruction, every flush a full fence).
_DIRECT_ARCH = platform.machine() in ("x86_64", "AMD64")


def direct_memory(win: MPI.Win) -> tuple[Optional[memoryview], Optional[np.ndarray]]:
    """The head's arena as (bytes, int64 words) mapped in this process, or (None, None)."""
    if not _DIRECT_ARCH or _shared_refused is not None or config.cached("MPIGROUP_ARENA_DIRECT") is False:
        return None, None
    try:
        buf, _unit = win.Shared_query(HEAD)
    except MPI.Exception:
        return None, None
    mem = memoryview(buf).cast("B")
    if mem.nbytes == 0:
        return None, None
    return mem, np.frombuffer(mem, np.int64, count=mem.nbytes // 8)


_FT_FLAG: Any = ()


def _ft_flag():
    global _FT_FLAG
    if _FT_FLAG == ():
        _FT_FLAG = None
        try:
            lib = ctypes.CDLL(MPI.__file__, mode=os.RTLD_NOLOAD)  # resolves through mpi4py's libmpi
            _FT_FLAG = ctypes.c_bool.in_dll(lib, "ompi_ftmpi_enabled")
        except (OSError, ValueError):
            pass
    return _FT_FLAG


class Universe:
    """This process's membership: the communicator, the arena window, the step lock."""

    remote = False  # operations apply to this process's window (see .relayed for the other kind)
    bells: Optional[doorbells.Bells] = None  # the run's doorbells, mapped (on the head's host)

    def __init__(self, comm: MPI.Intracomm, win: MPI.Win) -> None:
        self.comm = comm
        self.win = win
        self.mem, self.words = direct_memory(win)  # the arena mapped here, where it can be
        self.lock = threading.RLock()  # held by every operation and by every step
        self.left = threading.Event()
        self._releases: list[tuple[int, int]] = []  # (offset, generation) dropped by GC
        self._release_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self.failure: Optional[BaseException] = None  # why the service thread stopped, if it did
        win.Lock_all()

    # ------------------------------------------------------------ members
    def start_service(self, release: Callable[[int], None]) -> None:
        """Start the thread that joins steps while the main thread is busy."""
        self._free_block = release
        self._thread = threading.Thread(target=self._serve, name="mpigroup-universe", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        wait = Backoff(spin=0.0, initial=20e-6, maximum=20e-3)
        status = MPI.Status()
        while not self.left.is_set():
            busy = False
            try:
                if self.comm.Iprobe(HEAD, TAG_STEP, status):
                    msg = self.comm.recv(source=HEAD, tag=TAG_STEP)
                    with self.lock:
                        if self.left.is_set():
                            # leave() ran while this step was on its way: we are exiting, and a
                            # member that dies inside a step breaks it (and the join it admits).
                            # Stay out of it; its shrink finds us gone, as for any departed member.
                            return
                        self.take_step(msg.port)
                    busy = True
                busy |= self.process_releases()
            except Exception as exc:
                # This member missed a step: its window is no longer the universe's.
                # Operations must fail from now on (current() raises), not use it.
                log.error("the shared-object service thread stopped; shared objects can no longer be "
                          "used in this process", exc_info=True)
                self.failure = exc
                self.left.set()
                return
            if busy:
                wait.reset()
            else:
                wait.pause()

    def take_step(self, port: str, arena_size: int = 0, copy_upto: Any = None) -> list[int]:
        """An old member's part of a growth step (collective); returns the ranks found dead.

        Members that exited (normally or not) never take part in anything:
        the step starts with ULFM's ``MPI_Comm_shrink``, which agrees on the
        survivors even when a member died a moment ago, so an exit can never
        hang a step. The old window is freed collectively when nobody left;
        otherwise it stays allocated until the run ends (its free would need
        the departed).
        """
        with self.lock:
            old_comm, old_win = self.comm, self.win
            self.mem = self.words = None  # views of the old window: it may be freed below
            old_win.Unlock_all()
            me = old_comm.Get_rank()
            survivors, dead = self._shrink(old_comm)
            inter = survivors.Accept(port, root=HEAD)
            new_comm = inter.Merge(high=False)
            inter.Free()
            new_win = allocate_window(arena_size if me == HEAD else 0, new_comm)
            if me == HEAD and copy_upto is not None:
                used = copy_upto()  # every member is in the step now: no allocation is missed
                new_win.tomemory()[:used] = old_win.tomemory()[:used]
            poll_collective(new_comm.Ibarrier(), "arena copy")
            if not dead:
                try:
                    poll_collective(old_comm.Ibarrier(), "release of the old arena")
                    old_win.Free()
                except MPI.Exception:
                    pass  # a member died just now: leave the old window allocated
            if survivors is not old_comm:
                survivors.Free()
            poll_collective(new_comm.Ibarrier(), "end of step")
            self.comm, self.win = new_comm, new_win
            self.mem, self.words = direct_memory(new_win)
            new_win.Lock_all()
            return dead

    @staticmethod
    def _shrink(comm: MPI.Intracomm) -> tuple[MPI.Intracomm, list[int]]:
        if comm.Get_size() == 1:
            return comm, []
        shrunk = comm.Shrink()
        mapped = MPI.Group.Translate_ranks(comm.Get_group(), list(range(comm.Get_size())), shrunk.Get_group())
        return shrunk, [r for r, m in enumerate(mapped) if m == MPI.UNDEFINED]

    # -------------------------------------------------------- releases
    def defer_release(self, offset: int, generation: int) -> None:
        """Called from handle finalizers (any thread, any time): no MPI here."""
        with self._release_lock:
            self._releases.append((offset, generation))

    def process_releases(self) -> bool:
        with self._release_lock:
            todo, self._releases = self._releases, []
        if not todo or self.left.is_set():
            return False
        from .rma import drop_reference  # rma imports this module: a top-level import would be a cycle

        for offset, generation in todo:
            if drop_reference(self, offset, generation):
                self._free_block(offset)
        return True


def connect_newcomer(comm: MPI.Intracomm, port: str) -> Universe:
    """A newcomer's part of a growth step: ``comm`` connects as a whole."""
    inter = comm.Connect(port, root=0)
    merged = inter.Merge(high=True)
    inter.Free()
    win = allocate_window(0, merged)
    poll_collective(merged.Ibarrier(), "arena copy")
    poll_collective(merged.Ibarrier(), "end of step")
    uni = Universe(merged, win)
    uni.bells = _map_bells()
    return uni


def _map_bells() -> Optional[doorbells.Bells]:
    """A member on the head's host maps the doorbells the head made in the run directory."""
    run_dir = context.current().run_dir
    try:
        return doorbells.open_existing(run_dir)
    except OSError as exc:
        raise SharedObjectError(f"cannot map the run's doorbells in {run_dir}: {exc}") from exc


# ------------------------------------------------------------------ process state
_universe: Optional[Universe] = None
_head_service: Any = None  # UniverseHead on the head
_state_lock = threading.Lock()


def current() -> Universe:
    """This process's universe, joining it on first use."""
    uni = _universe
    if uni is not None:
        if uni.left.is_set():
            _raise_left(uni)
        return uni
    return _join()


def _raise_left(uni: Universe) -> None:
    if uni.failure is not None:
        raise SharedObjectError(f"shared objects cannot be used in this process: its service thread "
                                f"stopped ({type(uni.failure).__name__}: {uni.failure})") from uni.failure
    raise LeftUniverse("this process has left the mpigroup universe (it is exiting): "
                       "shared objects can no longer be used")


def is_remote() -> bool:
    """Whether this process's operations travel to the head (it is on another host)."""
    return _universe is not None and _universe.remote


def is_member() -> bool:
    """Whether this process is in the universe and has not left it."""
    return _universe is not None and not _universe.left.is_set()


def _join() -> Universe:
    global _universe, _head_service
    ctx = context.require_worker_or_head()
    with _state_lock:
        if _universe is not None:
            return _universe
        if ctx.role == "head":
            from .head_service import UniverseHead  # head_service imports this module: no cycle at import

            try:
                bells = doorbells.create(ctx.run_dir)
            except OSError as exc:
                raise SharedObjectError(f"cannot make the run's doorbells in {ctx.run_dir}: {exc}") from exc
            comm = MPI.COMM_SELF.Dup()
            win = allocate_window(arena_bytes(), comm)
            _universe = Universe(comm, win)
            _universe.bells = bells
            _head_service = UniverseHead(_universe, ctx)
            _head_service.start()
            return _universe
        if ctx.relayed:  # on another host: operations travel to the head through the node agent
            _universe = RelayedUniverse(ctx.api)
            return _universe
        port = ctx.api.call("universe_join", puids=[ctx.puid], timeout=STEP_TIMEOUT)
        _universe = connect_newcomer(MPI.COMM_SELF, port)
        _universe.start_service(_remote_free)
        return _universe


def join_spawned_set(port: str) -> Universe:
    """Called at boot by every rank of a set spawned with shared-object handles."""
    global _universe
    with _state_lock:
        _universe = connect_newcomer(MPI.COMM_WORLD, port)
        _universe.start_service(_remote_free)
        return _universe


def _remote_free(offset: int) -> None:
    context.current().api.call("arena_free", offset=offset)


def stop_head_service(timeout: float = 10.0) -> bool:
    """Head shutdown, before the workers are stopped: finish the step in progress, take no more.

    Returns False if a step is stuck (a member died inside it); the caller
    must then not finalize MPI, which would wait for that collective.
    """
    if _head_service is not None:
        return _head_service.stop(timeout)
    return True


def fence_operations(timeout: float = 2.0) -> bool:
    """Head shutdown, last step before MPI finalizes: no shared-object operation after this."""
    uni = _universe
    if uni is None:
        return True
    if not uni.lock.acquire(timeout=timeout):  # an operation or a step is still in flight
        uni.left.set()
        return False
    try:
        uni.left.set()
    finally:
        uni.lock.release()
    return True


def head_service():
    """The head's UniverseHead, created with the universe on first use."""
    current()
    return _head_service


def leave() -> None:
    """Stop using shared objects before this process exits (workers).

    Nothing collective: the next growth step shrinks the universe past us.
    Pending reference drops are sent first, so objects can still be freed.
    """
    uni = _universe
    if uni is None or uni.left.is_set():
        return
    uni.process_releases()
    with uni.lock:  # no operation of another thread in flight
        uni.left.set()




sharing.note_universe_used()
shutdown.register(Stage.BEFORE_KILL, "mpigroup.sync.universe", stop_head_service)
shutdown.register(Stage.AFTER_STOP, "mpigroup.sync.universe", fence_operations)
shutdown.register(Stage.LEAVE, "mpigroup.sync.universe", leave)
