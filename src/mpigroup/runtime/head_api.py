"""One interface to the head's services, local on rank 0, remote elsewhere.

Group and process objects only ever talk to a ``HeadAPI``; whether the head is
this process or a message away is decided once, at bootstrap.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Optional

from ..base.waiting import Backoff, deadline_after, expired, remaining
from ..errors import HeadUnreachable, ProtocolError
from .protocol import TAG_REPLY, TAG_REQUEST
from .requests import OpName, handle_request, op_name


class HeadAPI:
    """Calls into the head running in this process."""

    def __init__(self, head) -> None:
        self.head = head

    def call(self, op: OpName, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        return handle_request(self.head, op, kwargs)

    def post(self, op: OpName, **kwargs: Any) -> None:
        handle_request(self.head, op, kwargs)

    def wait_change(self, timeout: float) -> None:
        self.head.wait_change(timeout)


class RemoteHeadAPI:
    """Sends requests to the head over this process's channel to it.

    One request is in flight per process at a time (a lock), so a reply is
    always the answer to the request just sent; the request id guards that.
    Waiting polls with backoff instead of blocking inside MPI.
    """

    def __init__(self, comm, head_rank: int = 0) -> None:
        self.comm = comm
        self.head_rank = head_rank
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._backoff = Backoff(initial=50e-6, maximum=50e-3)  # wait_change: nothing tells us of a change

    def _await_reply(self, op: str, timeout: Optional[float], deadline: Optional[float], backoff: Backoff) -> tuple:
        wait_for = getattr(self.comm, "wait_for", None)  # a socket to the node agent: sleep on it
        while not self.comm.Iprobe(self.head_rank, TAG_REPLY):
            if expired(deadline):
                raise HeadUnreachable(f"head did not answer {op!r} within {timeout} s")
            if wait_for is not None:
                left = remaining(deadline)
                wait_for(TAG_REPLY, 5e-3 if left is None else min(5e-3, left))
            else:
                backoff.pause(deadline)
        return self.comm.recv(source=self.head_rank, tag=TAG_REPLY)

    def call(self, op: OpName, timeout: Optional[float] = 120.0, **kwargs: Any) -> Any:
        op = op_name(op)  # the wire carries the plain name
        with self._lock:
            req_id = next(self._ids)
            self.comm.send((req_id, op, kwargs), dest=self.head_rank, tag=TAG_REQUEST)
            deadline = deadline_after(timeout)
            backoff = Backoff(initial=50e-6, maximum=2e-3)
            rid, ok, result = self._await_reply(op, timeout, deadline, backoff)
            while rid < req_id:  # a late answer to a request that timed out earlier
                rid, ok, result = self._await_reply(op, timeout, deadline, backoff)
            if rid != req_id:
                raise ProtocolError(f"reply {rid} came for request {req_id} ({op!r})")
        if not ok:
            raise result
        return result

    def post(self, op: OpName, **kwargs: Any) -> None:
        """Send a request that gets no answer (request id 0). The channel is ordered, so a
        later :meth:`call` is handled after it; an error in it is logged by the head."""
        op = op_name(op)
        with self._lock:
            self.comm.send((0, op, kwargs), dest=self.head_rank, tag=TAG_REQUEST)

    def wait_change(self, timeout: float) -> None:
        """Sleep a while (doubling up to 50 ms, never past ``timeout``): the head's table may have changed."""
        self._backoff.pause(deadline_after(timeout))

    def reset_wait(self) -> None:
        self._backoff.reset()
