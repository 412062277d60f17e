"""Who holds a lock or streams a frame, named so that every host can tell if it died.

A lock word or a ring's owner word records an *owner ident*:

* a process on the head's host (spawned there with MPI, or the head itself)
  records its pid: all of them share the head's pid namespace;
* a process on another host (a relayed worker, started by that host's agent)
  records ``RELAYED_BASE + puid``: its pid means nothing off its host, and two
  hosts reuse the same pids, but its puid is unique in the run and the head
  knows its state (its agent reports its exit; a lost host exits all of them).

:func:`gone` answers "is this owner dead?" from any process: a pid is
checked where it lives (locally on the head's host, by the head otherwise),
a puid by the head's process table. Only slow paths ask (a lock or a stream
that has not moved for a while), so a head request there costs nothing that
matters.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from ..base.procs import process_gone
from ..runtime import context
from ..runtime.protocol import MemberState
from ..runtime.requests import Op

RELAYED_BASE = 1 << 22  # Linux pids stay below 2**22 (pid_max's ceiling)


def me() -> int:
    """This process's owner ident."""
    ctx = context.current()
    return RELAYED_BASE + ctx.puid if ctx.relayed else os.getpid()


def is_relayed(ident: int) -> bool:
    return ident >= RELAYED_BASE


def describe(ident: int) -> str:
    """How an error message names the owner."""
    return f"puid {ident - RELAYED_BASE} on another host" if is_relayed(ident) else f"pid {ident}"


def gone(ident: int, still_held: Optional[Callable[[], bool]] = None) -> bool:
    """Whether the owner ``ident`` has exited (its host's agent said so, or its host was lost)
    while it still holds what the caller saw it hold (``still_held``, re-read afterwards).

    A relayed process's last operations (the unlock that ends its frame) are
    posted: they may still wait in the head's queue of shipped operations when
    its exit is known. So once its exit is known, that queue is drained
    (``rma_drain``) and ``still_held`` asked again: a process that let go
    before it exited is not reported dead.
    """
    if ident <= 0:
        return False
    if ident == me():
        return False
    ctx = context.current()
    if is_relayed(ident):
        try:
            [status] = ctx.api.call(Op.STATUS, puids=[ident - RELAYED_BASE])
        except KeyError:  # no such member in this run: nobody holds the word under that name
            return True
        if status.state != MemberState.EXITED:
            return False
        ctx.api.call("rma_drain")
        return still_held() if still_held is not None else True
    if ctx.relayed:  # a pid of the head's host: only the head can look it up
        return bool(ctx.api.call("pid_gone", pid=ident))
    return process_gone(ident)


def head_pid_gone(head, pid: int) -> bool:
    """The head's ``pid_gone`` request: a pid of its own host."""
    return process_gone(pid)
