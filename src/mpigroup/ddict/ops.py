"""Operation and status codes of the DDict protocol. Pure Python.

A request header is ``(op, request_id, reply_address, *args)``; a reply
header is ``(request_id, status, payload)``; value blobs follow either.
On the wire ``op`` and ``status`` are plain ints (``int(Op.GET)``): the
header stays a small pickle of builtins; both sides compare them with the
enum members.
"""
from __future__ import annotations

import enum

__all__ = ["Op", "Status", "READ_ONLY"]


class Op(enum.IntEnum):
    """What a request asks a manager to do."""

    GET = 0
    PUT = 1
    CONTAINS = 2
    DELETE = 3
    POP = 4
    POPITEM = 5
    SETDEFAULT = 6
    FETCH_ADD = 7
    WAIT = 8
    LEN = 9
    KEYS = 10
    ITEMS = 11
    CLEAR = 12
    CHECKPOINT = 13
    ROLLBACK = 14
    STATS = 15
    PERSIST = 16
    STOP = 17
    GET_DIRECT = 18  # one key; a large value is answered with its address in the manager (see cma)


class Status(enum.IntEnum):
    """How a manager answered."""

    OK = 0
    ERROR = 1  # payload: (exception type, message, traceback, host, pid)
    FULL = 2  # payload: the message of the shard's budget error
    NO_CHECKPOINT = 3  # payload: why rollback is not possible


# Requests that never free a stored blob (every other one may); plain ints, as they arrive.
READ_ONLY = frozenset(int(op) for op in (Op.GET, Op.GET_DIRECT, Op.CONTAINS, Op.LEN, Op.KEYS, Op.ITEMS,
                                         Op.STATS, Op.PERSIST, Op.WAIT))
