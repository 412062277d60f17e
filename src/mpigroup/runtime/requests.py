"""The head's request table: what any process may ask of the head.

The same operations are called directly on the head and through messages from
every other process (:class:`mpigroup.runtime.api.RemoteHeadAPI`).
"""
from __future__ import annotations

from typing import Any, Callable


_OPS: dict[str, Callable[..., Any]] = {
    "new_puids": lambda head, n: head.new_puids(n),
    "new_set_key": lambda head, prefix="s": head.new_set_key(prefix),
    "spawn_python": lambda head, members, hosts, join_universe=False: head.spawn_python(
        members, hosts, join_universe),
    "register_foreign_set": lambda head, set_key, puids, hosts: head.register_foreign_set(set_key, puids, hosts),
    "status": lambda head, puids: head.status(puids),
    "signal": lambda head, puids, signum: head.signal(puids, signum),
    "output": lambda head, puid, stream: head.output(puid, stream),
    "abandon": lambda head, puids, exitcode: head.abandon(puids, exitcode),
    # shared objects (mpigroup.sync): membership of the universe, arena blocks
    "universe_join": lambda head, puids: _universe_head().request_join(puids),
    "arena_alloc": lambda head, nbytes: _universe_head().allocate(nbytes),
    "arena_free": lambda head, offset: _universe_head().free(offset),
    # telemetry: node monitors report here (from any host)
    "telemetry_put": lambda head, samples: _telemetry().put_from_monitor(samples),
    "telemetry_stopping": lambda head: _telemetry().monitors_stopping(),
}


def _telemetry():
    from ..telemetry import service

    return service


def _universe_head():
    from ..sync.universe import head_service

    return head_service()

OPERATIONS = tuple(_OPS)


def handle_request(head, op: str, kwargs: dict) -> Any:
    try:
        fn = _OPS[op]
    except KeyError:
        raise ValueError(f"unknown head operation {op!r}; known: {', '.join(OPERATIONS)}") from None
    return fn(head, **kwargs)
