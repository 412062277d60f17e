"""Message tags, payload shapes and the idle-wait policy shared by all roles.

Every process talks to the head over one communicator: initial ranks over
``COMM_WORLD`` (head is rank 0), spawned ranks over their parent
intercommunicator (the head is the only member of the parent group). Messages
are pickled tuples; the tag says who reads them.

Waiting never blocks inside MPI: a thread blocked in a receive spins a whole
core (measured 5.0 s CPU in 5 s here). Instead every wait polls with
``Iprobe``/``Test`` and sleeps with exponential backoff (:class:`Backoff`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

# worker/agent -> head
TAG_REQUEST = 11  # (req_id, op, kwargs)
TAG_EVENT = 12  # ("started"|"output"|"finished", payload)
# head -> worker/agent
TAG_REPLY = 21  # (req_id, ok, result_or_error)
TAG_BOOT = 22  # BootPayload
TAG_CONTROL = 23  # ("signal", pid, signum) | ("shutdown",) to agents
# agent -> head
TAG_AGENT = 31  # ("exited", set_id, rank, status)


@dataclass
class Backoff:
    """Exponential sleep for polling loops: cheap when idle, quick when busy."""

    initial: float = 50e-6
    maximum: float = 5e-3
    factor: float = 2.0
    current: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.current = self.initial

    def reset(self) -> None:
        self.current = self.initial

    def sleep(self, deadline: Optional[float] = None) -> None:
        delay = self.current
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - time.monotonic()))
        time.sleep(delay)
        self.current = min(self.maximum, self.current * self.factor)


def pid_alive(pid: int) -> bool:
    """Whether a process of this node still exists (a pid owned by someone else counts as alive)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment; a bad value names the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name}={raw!r}: expected a number of seconds > 0 (default {default:g})")
    return value


def deadline_after(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def expired(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@dataclass
class MemberSpec:
    """What one spawned Python rank must run; sent in its BootPayload."""

    puid: int
    target_kind: str  # "python" | "exec"
    target: Any  # cloudpickled bytes for python, argv list for exec
    cwd: str
    env: dict
    stdout: Any  # None | "pipe" | "devnull" | path
    stderr: Any  # None | "pipe" | "devnull" | "stdout" | path
    cpus: Optional[tuple]
    gpu_env: dict
    label: bool = False
    group_name: str = ""
    sys_path: tuple = ()  # the spawner's sys.path, so targets import as they did there
    forward_output: bool = False  # default output goes to the head over MPI (singleton runs)


@dataclass
class BootPayload:
    """Everything a spawned rank needs to join the runtime."""

    member: MemberSpec
    allocation: Any  # topology.Allocation
    head_host: str
    head_pid: int
    run_dir: str  # this rank's node
    run_dirs: dict  # hostname -> run directory on that node
    universe_port: Optional[str] = None  # join the shared-object universe at boot (mpigroup.sync)
    node: str = ""  # the launcher's name of the node this rank runs on
