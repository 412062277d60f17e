"""Workers on other hosts reach the head through their node's agent.

Why (measured on namespace hosts, Open MPI 5.0.11 / PRRTE 3.0.14, see
docs/architecture.md "Across hosts"): ``MPI_Comm_spawn`` onto a remote host
returns every time, but only the *first* job spawned onto a host can exchange
MPI messages with a process of an older job. From the second job on, the
direct-modex lookup of the new job's TCP address fails
(``opal_modex_recv: -46``), the older side rejects the connection, and both
hang or crash. The initial ranks of ``COMM_WORLD`` (head and node agents)
know each other from ``MPI_Init`` and are not affected.

So a worker on another host is started by its node's agent as a plain child
process, and talks to the agent over a Unix socket in the node's run
directory; the agent forwards frames to and from the head over
``COMM_WORLD``. A process never needs a dynamic MPI connection to another
host (the shape Dragon's transport agents have).

This module holds the socket side only (no MPI): :class:`AgentChannel` is the
worker's end. It offers the subset of an mpi4py communicator that the worker
loop and :class:`~mpigroup.runtime.head_api.RemoteHeadAPI` use (``send``,
``Iprobe``, ``recv``, ``issend``, ``Get_rank``), so they run unchanged over it.
Frames are ``pickle.dumps((tag, obj))``; the agent forwards them as bytes.
"""
from __future__ import annotations

import collections
import pickle
import threading
from multiprocessing.connection import Client, Connection
from typing import Any

from ..base import config
from .protocol import TAG_REPLY, TAG_REQUEST

SOCKET_NAME = "agent.sock"
ENV_SOCKET = "MPIGROUP_AGENT_SOCKET"
ENV_KEY = "MPIGROUP_AGENT_KEY"  # authkey, hex; in the environment, never on a command line


# The first byte of a frame says whether it opens or closes a wait, so that the agent, which
# never unpickles frames, knows when a worker waits for an answer and polls the head fast then.
ASKS, ANSWERS, OTHER = b"Q", b"A", b"-"


def encode(tag: int, obj: Any) -> bytes:
    kind = ASKS if tag == TAG_REQUEST and obj[0] else ANSWERS if tag == TAG_REPLY else OTHER
    return kind + pickle.dumps((tag, obj), protocol=pickle.HIGHEST_PROTOCOL)


def decode(frame: bytes) -> tuple[int, Any]:
    return pickle.loads(memoryview(frame)[1:])


class _Done:
    """What ``issend`` returns: the frame is in the socket, so it will arrive."""

    @staticmethod
    def Test() -> bool:  # noqa: N802 (mpi4py's name)
        return True


class AgentChannel:
    """A worker's connection to its node agent, shaped like its parent communicator."""

    def __init__(self, conn: Connection, rank: int) -> None:
        self._conn = conn
        self._rank = rank
        self._inbox: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()

    @classmethod
    def connect(cls, set_key: str, rank: int) -> "AgentChannel":
        """Connect to the agent named by the environment and say who we are."""
        path = config.get(ENV_SOCKET)
        if path.startswith("@"):  # Linux abstract socket (no NUL allowed in the environment)
            path = "\0" + path[1:]
        key = bytes.fromhex(config.get(ENV_KEY))
        conn = Client(path, family="AF_UNIX", authkey=key)
        conn.send_bytes(pickle.dumps((set_key, rank)))
        return cls(conn, rank)

    def Get_rank(self) -> int:  # noqa: N802
        return self._rank

    def send(self, obj: Any, dest: int = 0, tag: int = 0) -> None:
        frame = encode(tag, obj)
        with self._send_lock:
            self._conn.send_bytes(frame)

    def issend(self, obj: Any, dest: int = 0, tag: int = 0) -> _Done:
        self.send(obj, dest, tag)
        return _Done()

    def _drain(self, wait: float = 0.0) -> None:
        """Move every frame already received into the per-tag inbox (EOF raises)."""
        with self._recv_lock:
            while self._conn.poll(wait):
                tag, obj = decode(self._conn.recv_bytes())
                self._inbox[tag].append(obj)
                wait = 0.0

    def wait_for(self, tag: int, timeout: float) -> None:
        """Return once a frame of ``tag`` is here, or after ``timeout`` (woken by the socket, not polling)."""
        if not self._inbox[tag]:
            self._drain(wait=timeout)

    def Iprobe(self, source: int = 0, tag: int = 0) -> bool:  # noqa: N802
        if not self._inbox[tag]:
            self._drain()
        return bool(self._inbox[tag])

    def recv(self, source: int = 0, tag: int = 0) -> Any:
        while not self._inbox[tag]:
            self._drain(wait=0.05)
        return self._inbox[tag].popleft()

    def close(self) -> None:
        self._conn.close()


def decode_hello(frame: bytes) -> tuple[str, int]:
    """The first frame a worker sends: (set key, rank)."""
    set_key, rank = pickle.loads(frame)
    if not isinstance(set_key, str) or not isinstance(rank, int):
        raise ValueError("malformed hello")
    return set_key, rank
