"""One interface to the head's services, local on rank 0, remote elsewhere.

Group and process objects only ever talk to a ``HeadAPI``; whether the head is
this process or a message away is decided once, at bootstrap.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Optional

from . import protocol as P
from .requests import handle_request


class HeadAPI:
    """Calls into the head running in this process."""

    def __init__(self, head) -> None:
        self.head = head

    def call(self, op: str, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        return handle_request(self.head, op, kwargs)

    def wait_change(self, timeout: float) -> None:
        self.head.wait_change(timeout)


class HeadUnreachable(RuntimeError):
    """The head did not answer within the timeout."""


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
        self._backoff = P.Backoff(maximum=50e-3)

    def call(self, op: str, timeout: Optional[float] = 120.0, **kwargs: Any) -> Any:
        with self._lock:
            req_id = next(self._ids)
            self.comm.send((req_id, op, kwargs), dest=self.head_rank, tag=P.TAG_REQUEST)
            deadline = P.deadline_after(timeout)
            backoff = P.Backoff(maximum=2e-3)
            while not self.comm.Iprobe(self.head_rank, P.TAG_REPLY):
                if P.expired(deadline):
                    raise HeadUnreachable(f"head did not answer {op!r} within {timeout} s")
                backoff.sleep(deadline)
            rid, ok, result = self.comm.recv(source=self.head_rank, tag=P.TAG_REPLY)
            while rid < req_id:  # a late answer to a request that timed out earlier
                while not self.comm.Iprobe(self.head_rank, P.TAG_REPLY):
                    if P.expired(deadline):
                        raise HeadUnreachable(f"head did not answer {op!r} within {timeout} s")
                    backoff.sleep(deadline)
                rid, ok, result = self.comm.recv(source=self.head_rank, tag=P.TAG_REPLY)
            if rid != req_id:
                raise RuntimeError(f"protocol error: reply {rid} for request {req_id}")
        if not ok:
            raise result
        return result

    def wait_change(self, timeout: float) -> None:
        import time

        time.sleep(min(timeout, self._backoff.current))
        self._backoff.current = min(self._backoff.maximum, self._backoff.current * 2)

    def reset_wait(self) -> None:
        self._backoff.reset()
