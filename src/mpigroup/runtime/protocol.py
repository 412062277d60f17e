"""Message tags and the typed messages every role exchanges with the head.

Every process talks to the head over one communicator: initial ranks over
``COMM_WORLD`` (head is rank 0), spawned ranks over their parent
intercommunicator (the head is the only member of the parent group), and
workers on other hosts through their node agent (:mod:`.relay`). Messages
are pickled; the tag says who reads them, the message's class says what it
is. NamedTuples (not bare tuples) so that a wrong field name fails at once,
and still plain tuples on the wire.

Waiting never blocks inside MPI: a thread blocked in a receive spins a whole
core (measured 5.0 s CPU in 5 s here). Instead every wait polls with
``Iprobe``/``Test`` and sleeps with :class:`mpigroup.base.waiting.Backoff`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Union

from ..errors import RemoteError

# worker/agent -> head
TAG_REQUEST = 11  # (req_id, op, kwargs)
TAG_EVENT = 12  # Started | Output | Finished
# head -> worker/agent
TAG_REPLY = 21  # (req_id, ok, result_or_error)
TAG_BOOT = 22  # BootPayload
TAG_CONTROL = 23  # Launch | Frame | Signal | Shutdown, to agents
# agent -> head
TAG_AGENT = 31  # Exited | PidKnown | Frame | Alive


class MemberState(str, enum.Enum):
    """Where a spawned process is in its life (``str`` values: they compare equal to the old literals)."""

    PENDING = "pending"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class MemberStatus:
    """What the head's ``status`` operation says about one process.

    Read it by attribute. ``st["pid"]`` and ``st.get("pid")`` still work
    for callers written against the dict this used to be.
    """

    puid: int
    state: MemberState
    pid: Optional[int]
    host: str
    rank: int
    exitcode: Optional[int]
    error: Optional[tuple]  # (type name, message, traceback text) of a Python target that raised

    @property
    def exited(self) -> bool:
        return self.state == MemberState.EXITED

    @property
    def failed(self) -> bool:
        """Exited with a code other than 0."""
        return self.exited and self.exitcode not in (0, None)

    def remote_error(self) -> Optional[RemoteError]:
        """The RemoteError of a target that raised (or of a lost process), else None."""
        if not self.error:
            return None
        return RemoteError(*self.error, puid=self.puid, rank=self.rank, host=self.host)

    def __getitem__(self, key: str) -> Any:  # the dict spelling of older callers
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


# ---------------------------------------------------------------- events (TAG_EVENT, worker -> head)
class Started(NamedTuple):
    """The worker runs: its pid, the node it runs on and its PMIx namespace ("" if relayed or unknown).

    The head releases the PMIx data of a finished set's namespace
    (:func:`mpigroup.runtime.pmix_jobs.forget_job`).
    """

    pid: int
    host: str
    nspace: str = ""


class Output(NamedTuple):
    """Output of a worker: ``stream`` is stdout/stderr (captured) or forward-stdout/forward-stderr."""

    stream: str
    data: bytes


class Finished(NamedTuple):
    """The target returned: its exit code and, if it raised, (type, message, traceback)."""

    exitcode: int
    error: Optional[tuple]


Event = Union[Started, Output, Finished]


# ---------------------------------------------------------------- agent messages
class Exited(NamedTuple):
    """(agent -> head) A process of a set ended with raw shell status ``raw``."""

    set_key: str
    rank: int
    raw: int
    error: Optional[list] = None  # [type, message, traceback] of a PMI Python rank that raised


class PidKnown(NamedTuple):
    """(agent -> head) The pid of a process of a set."""

    set_key: str
    rank: int
    pid: int


class Frame(NamedTuple):
    """(both ways) A relayed worker's encoded message (:func:`.relay.encode`)."""

    set_key: str
    rank: int
    frame: bytes


class Alive(NamedTuple):
    """(agent -> head) Heartbeat of a host's leader agent."""


class Launch(NamedTuple):
    """(head -> agent) Start these workers: ``entries`` = [(rank, encoded BootPayload)]."""

    set_key: str
    entries: list
    env: dict


class Signal(NamedTuple):
    """(head -> agent) Deliver ``signum`` to ``pid`` on the agent's node."""

    pid: int
    signum: int


class Shutdown(NamedTuple):
    """(head -> agent) Leave the agent loop; without ``finalize``, leave as the head does
    (PMIx_Finalize, then exit: no MPI_Finalize, see launcher.initial_ranks)."""

    finalize: bool = True


class Leaving(NamedTuple):
    """(agent -> head) The answer to ``Shutdown(finalize=False)``: the head may exit now (an exit
    before the agent read its Shutdown would look like a failed head to it)."""


# ---------------------------------------------------------------- boot
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
