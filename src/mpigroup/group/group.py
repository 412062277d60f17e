"""ProcessGroup: a set of processes started together, Dragon-style.

Lifecycle: ``add_process`` → ``init`` (policies evaluated, every error raised
before anything is spawned) → ``start`` (one spawned set) → ``join`` / ``stop``
→ ``close``. By default the group behaves like an MPI job: a member exiting
non-zero makes the next API call raise :class:`ProcessGroupError` carrying
the member's exit code and, for Python targets, its remote traceback.
"""
from __future__ import annotations

import enum
import logging
import signal
import sys
import threading
import time
from typing import Optional

from ..base import config
from ..base.waiting import deadline_after, expired, remaining
from ..errors import ProcessGroupError
from ..policy import Policy, evaluate, resolve_policy
from ..runtime import context
from ..runtime.protocol import MemberSpec, MemberState, MemberStatus
from ..runtime.requests import Op
from ..topology import Placement, gpu_env
from .pmi import finish_proxy, start_pmi_world
from .template import ProcessTemplate

log = logging.getLogger(__name__)

EXITED = MemberState.EXITED


class GroupState(str, enum.Enum):
    """A group's lifecycle: NEW -> INITIALIZED -> RUNNING -> STOPPED -> CLOSED."""

    NEW = "new"
    INITIALIZED = "initialized"
    RUNNING = "running"
    STOPPED = "stopped"
    CLOSED = "closed"


class ProcessGroup:
    """A group of processes with a shared lifecycle and placement policy.

    ``pmi=True`` runs the members as the ranks of one ``MPI_COMM_WORLD``
    (PMI pass-through): their ``MPI_Init`` reaches the running launcher's PMIx
    server, no setup needed. ``restart=True`` restarts members that exit;
    ``walltime`` (seconds) stops the group when it runs out.
    """

    def __init__(
        self,
        restart: bool = False,
        ignore_error_on_exit: bool = False,
        pmi: bool = False,
        walltime: Optional[float] = None,
        policy: Optional[Policy] = None,
        name: Optional[str] = None,
        label_output: Optional[bool] = None,
        *,
        pmi_enabled: Optional[bool] = None,
    ) -> None:
        if pmi_enabled is not None:  # Dragon's spelling, accepted so scripts port unchanged
            pmi = pmi or bool(pmi_enabled)
        if policy is not None and not isinstance(policy, Policy):
            raise TypeError(f"policy must be a mpigroup.Policy, got {type(policy).__name__}")
        if walltime is not None and walltime <= 0:
            raise ValueError(f"walltime must be positive seconds, got {walltime!r}")
        if pmi and restart:
            raise ValueError("restart=True is not supported with pmi=True: an MPI world cannot regrow one rank")
        self.restart = restart
        self.ignore_error_on_exit = ignore_error_on_exit
        self.pmi = pmi
        self.walltime = walltime
        self.policy = policy
        self.name = name or "group"
        self.label_output = label_output
        self._templates: list[tuple[int, ProcessTemplate]] = []
        self._slots: list[tuple[ProcessTemplate, Placement]] = []  # one per member
        self._current: list[int] = []  # live puid per slot
        self._history: list[int] = []  # every puid ever started, in order
        self._status: dict[int, MemberStatus] = {}
        self._reported: set[int] = set()
        self._state = GroupState.NEW
        self._stopping = False
        self._proxy: Optional[int] = None
        self._monitor: Optional[threading.Thread] = None
        self._monitor_error: Optional[BaseException] = None  # why the restart/walltime thread died
        self.walltime_expired = False  # set when walltime stopped the group
        self._started_at = 0.0
        self._lock = threading.RLock()

    # ------------------------------------------------------------- building
    def add_process(self, nproc: int, template: ProcessTemplate) -> None:
        """Add ``nproc`` members running ``template``."""
        if self._state != GroupState.NEW:
            raise ProcessGroupError("add_process() after init()/start(): create a new group instead")
        if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
            raise ValueError(f"nproc must be a positive int, got {nproc!r}")
        if not isinstance(template, ProcessTemplate):
            raise TypeError(f"template must be a ProcessTemplate, got {type(template).__name__}")
        self._templates.append((nproc, template))

    def init(self) -> None:
        """Evaluate every member's placement; raises before anything is spawned."""
        if self._state != GroupState.NEW:
            return
        if not self._templates:
            raise ProcessGroupError("ProcessGroup has no processes: call add_process() first")
        ctx = context.require_worker_or_head()
        templates = [t for n, t in self._templates for _ in range(n)]
        policies = [
            resolve_policy(group=self.policy, template=t.policy, with_policy=t.with_policy) for t in templates
        ]
        placements = evaluate(policies, ctx.allocation, ctx.hostname)
        self._slots = list(zip(templates, placements))
        self._state = GroupState.INITIALIZED

    # -------------------------------------------------------------- running
    def start(self) -> None:
        """Spawn every member as one set (or one MPI world with ``pmi=True``)."""
        self._raise_if_failed()
        self.init()
        if self._state != GroupState.INITIALIZED:
            raise ProcessGroupError(f"cannot start a group in state {self._state.value!r}")
        self._started_at = time.monotonic()
        if self.pmi:
            self._current, self._proxy = start_pmi_world(self, self._slots)
        else:
            self._current = self._spawn_slots(list(range(len(self._slots))))
        self._history.extend(self._current)
        self._state = GroupState.RUNNING
        if self.restart or self.walltime:
            self._monitor = threading.Thread(target=self._watch, daemon=True, name=f"mpigroup-{self.name}")
            self._monitor.start()

    def _spawn_slots(self, slots: list[int]) -> list[int]:
        ctx = context.current()
        puids = ctx.api.call(Op.NEW_PUIDS, n=len(slots))
        label = self.label_output
        if label is None:
            label = config.get("MPIGROUP_LABEL_OUTPUT")
        members, hosts = [], []
        for puid, slot in zip(puids, slots):
            template, placement = self._slots[slot]
            members.append(
                MemberSpec(
                    puid=puid,
                    target_kind=template.kind,
                    target=template.payload,
                    cwd=template.cwd,
                    env=template.env,
                    stdout=template.stdout,
                    stderr=template.stderr,
                    cpus=placement.cpus,
                    gpu_env=gpu_env(placement),
                    label=bool(label),
                    group_name=self.name,
                    sys_path=tuple(sys.path),
                )
            )
            hosts.append(placement.hostname)
        join = any(self._slots[slot][0].shares_objects for slot in slots)
        return ctx.api.call(Op.SPAWN_PYTHON, members=members, hosts=hosts, join_universe=join)

    def _watch(self) -> None:
        """The group's service thread; if it fails, the group's next call raises (never a silent hang)."""
        try:
            self._watch_loop()
        except Exception as exc:
            log.error("ProcessGroup %r: the restart/walltime thread failed", self.name, exc_info=True)
            self._monitor_error = exc

    def _watch_loop(self) -> None:
        """Restart exited members and enforce walltime, until the group stops."""
        api = context.current().api
        while self._state == GroupState.RUNNING and not self._stopping:
            if self.walltime and time.monotonic() - self._started_at > self.walltime:
                self.walltime_expired = True
                threading.Thread(target=self.stop, daemon=True).start()  # stop() joins this thread
                return
            with self._lock:
                if self._stopping:
                    return
                self._refresh()
                if self.restart:
                    done = [s for s, p in enumerate(self._current) if self._status[p].exited]
                    if done:
                        new = self._spawn_slots(done)
                        for slot, puid in zip(done, new):
                            self._current[slot] = puid
                            self._history.append(puid)
                        self._refresh()
                elif all(st.exited for st in self._status.values()):
                    return
            api.wait_change(0.05)

    # --------------------------------------------------------------- status
    def _refresh(self) -> None:
        with self._lock:
            puids = list(self._history)
            if not puids:
                return
            for st in context.current().api.call(Op.STATUS, puids=puids):
                self._status[st.puid] = st

    def _known(self, puid: int) -> MemberStatus:
        if puid not in self._status:
            raise ValueError(f"puid {puid} is not a member of {self.name!r} (members: {self._history})")
        return self._status[puid]

    def _failures(self) -> list[MemberStatus]:
        return [s for p, s in self._status.items() if s.failed and p not in self._reported]

    def _raise_if_failed(self) -> None:
        if self._monitor_error is not None:
            error, self._monitor_error = self._monitor_error, None
            raise ProcessGroupError(f"the restart/walltime thread of {self.name!r} failed: "
                                    f"{type(error).__name__}: {error}") from error
        if self.ignore_error_on_exit or self._stopping:
            return
        failures = self._failures()
        if not failures:
            return
        self._reported.update(f.puid for f in failures)
        lines = [f"puid {f.puid} (rank {f.rank} on {f.host}) exited with {f.exitcode}" for f in failures]
        err = ProcessGroupError(f"{len(failures)} member(s) of {self.name!r} failed: " + "; ".join(lines))
        cause = failures[0].remote_error()
        if cause is not None:
            raise err from cause
        raise err

    @property
    def puids(self) -> list[int]:
        """Current member puids, in member order."""
        return list(self._current)

    @property
    def exit_status(self) -> list[tuple[int, Optional[int]]]:
        """(puid, exit code) of every member started so far, None while running."""
        with self._lock:
            self._refresh()
            return [(p, self._status[p].exitcode if self._status[p].exited else None) for p in self._history]

    @property
    def in_error_state(self) -> bool:
        self._refresh()
        return any(s.failed for s in self._status.values())

    def is_running(self) -> bool:
        with self._lock:
            self._refresh()
            return any(not self._status[p].exited for p in self._current)

    def pid(self, puid: int) -> Optional[int]:
        """OS pid of a member (None until it has started)."""
        with self._lock:
            self._refresh()
            return self._known(puid).pid

    def stdout(self, puid: int, raw: bool = False):
        """Everything member ``puid`` wrote to a PIPE'd stdout so far (bytes if ``raw``)."""
        return self._output(puid, "stdout", raw)

    def stderr(self, puid: int, raw: bool = False):
        """Everything member ``puid`` wrote to a PIPE'd stderr so far (bytes if ``raw``)."""
        return self._output(puid, "stderr", raw)

    def _output(self, puid: int, stream: str, raw: bool):
        with self._lock:
            self._refresh()
            self._known(puid)
        data = context.current().api.call(Op.OUTPUT, puid=puid, stream=stream)
        return data if raw else data.decode(errors="replace")

    # ------------------------------------------------------------ waiting
    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for every member to exit; raises TimeoutError if they do not in time."""
        if self._state in (GroupState.NEW, GroupState.INITIALIZED):
            raise ProcessGroupError("join() before start()")
        api = context.current().api
        deadline = deadline_after(timeout)
        if hasattr(api, "reset_wait"):
            api.reset_wait()
        while True:
            with self._lock:
                self._refresh()
                self._check_proxy()
                self._raise_if_failed()
                live = [p for p in self._current if not self._status[p].exited]
            if not live and not (self.restart and self._state == GroupState.RUNNING and not self._stopping):
                break
            if expired(deadline):
                raise TimeoutError(f"{len(live)} member(s) of {self.name!r} still running after {timeout} s")
            api.wait_change(0.05 if deadline is None else min(0.05, remaining(deadline)))
        self._finish_proxy()
        if self._state == GroupState.RUNNING:
            self._state = GroupState.STOPPED

    def _check_proxy(self) -> None:
        """A PMI world whose launcher failed will never start: fail its members."""
        if self._proxy is None:
            return
        api = context.current().api
        st = api.call(Op.STATUS, puids=[self._proxy])[0]
        if st.exited and st.exitcode != 0:
            self._proxy = None
            api.call(Op.ABANDON, puids=list(self._current), exitcode=-1)
            self._refresh()
            if not self.ignore_error_on_exit:
                err = ProcessGroupError(f"PMI launch of {self.name!r} failed (launcher exit {st.exitcode})")
                cause = st.remote_error()
                if cause is not None:
                    raise err from cause
                raise err

    def _finish_proxy(self) -> None:
        if self._proxy is not None:
            finish_proxy(self._proxy)
            self._proxy = None

    def _signal(self, signum: int) -> None:
        if self._current:
            context.current().api.call(Op.SIGNAL, puids=list(self._current), signum=signum)

    def send_signal(self, signum: int) -> None:
        self._signal(signum)

    def stop(self, patience: float = 5.0) -> None:
        """Stop members: SIGINT, then SIGTERM, then SIGKILL, ``patience`` s apart."""
        if self._state not in (GroupState.RUNNING, GroupState.STOPPED):
            return
        with self._lock:  # the restart monitor checks this under the same lock
            self._stopping = True
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join()  # it spawns nothing more once _stopping is set
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            self._signal(signum)
            try:
                self.join(timeout=patience)
                break
            except TimeoutError:
                continue
        self._state = GroupState.STOPPED

    def _halt_restarts(self) -> None:
        with self._lock:
            self._stopping = True
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join()

    def terminate(self) -> None:
        """SIGTERM every member (exit code -15 for those it stops)."""
        self._halt_restarts()
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL every member (exit code -9)."""
        self._halt_restarts()
        self._signal(signal.SIGKILL)

    def close(self) -> None:
        """Stop anything still running and release the group."""
        if self._state == GroupState.RUNNING:
            self.stop(patience=2.0)
        self._finish_proxy()
        self._state = GroupState.CLOSED

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProcessGroup(name={self.name!r}, state={getattr(self._state, 'value', self._state)}, members={len(self._slots) or sum(n for n, _ in self._templates)})"
