"""The head's request table: what any process may ask of the head.

The same operations are called directly on the head and through messages from
every other process (:class:`mpigroup.runtime.head_api.RemoteHeadAPI`).

The runtime's own operations are listed here. Services of higher layers (the
shared-object universe of :mod:`mpigroup.sync`, telemetry) add theirs with
:func:`register_provider`, from the package's top (``mpigroup/__init__.py``),
so that the runtime never imports the layers above it. A provider is loaded
on the head the first time one of its operations is asked for.
"""
from __future__ import annotations

import enum
import threading
from typing import Any, Callable, Iterable, Mapping, Optional, Union

Handler = Callable[..., Any]


class Op(str, enum.Enum):
    """The runtime's own head operations. Their string values are what travels and what
    :func:`handle_request` accepts too (providers register and are called by name)."""

    NEW_PUIDS = "new_puids"
    NEW_SET_KEY = "new_set_key"
    SPAWN_PYTHON = "spawn_python"
    REGISTER_FOREIGN_SET = "register_foreign_set"
    STATUS = "status"
    SIGNAL = "signal"
    OUTPUT = "output"
    ABANDON = "abandon"


OpName = Union[Op, str]

_OPS: dict[str, Handler] = {
    Op.NEW_PUIDS.value: lambda head, n: head.new_puids(n),
    Op.NEW_SET_KEY.value: lambda head, prefix="s": head.new_set_key(prefix),
    Op.SPAWN_PYTHON.value: lambda head, members, hosts, join_universe=False: head.spawn_python(
        members, hosts, join_universe),
    Op.REGISTER_FOREIGN_SET.value: lambda head, set_key, puids, hosts: head.register_foreign_set(
        set_key, puids, hosts),
    Op.STATUS.value: lambda head, puids: head.status(puids),
    Op.SIGNAL.value: lambda head, puids, signum: head.signal(puids, signum),
    Op.OUTPUT.value: lambda head, puid, stream: head.output(puid, stream),
    Op.ABANDON.value: lambda head, puids, exitcode: head.abandon(puids, exitcode),
}
assert set(_OPS) == {op.value for op in Op}


def op_name(op: OpName) -> str:
    """The plain string of an operation (an :class:`Op` hashes by its member name, not its value)."""
    return op.value if isinstance(op, Op) else op
_providers: dict[str, Callable[[], Mapping[str, Handler]]] = {}
_lock = threading.Lock()


def register_provider(operations: Iterable[str], load: Callable[[], Mapping[str, Handler]]) -> None:
    """Declare that ``load()`` returns the handlers ``{op: fn(head, **kwargs)}`` of ``operations``."""
    with _lock:
        for op in operations:
            if op in _OPS:
                raise ValueError(f"head operation {op!r} is already defined")
            _providers[op] = load


def operations() -> tuple[str, ...]:
    """Every operation the head answers (its own and the providers')."""
    return tuple(_OPS) + tuple(op for op in _providers if op not in _OPS)


def _handler(op: OpName) -> Handler:
    op = op_name(op)
    fn = _OPS.get(op)
    if fn is not None:
        return fn
    with _lock:
        fn = _OPS.get(op)
        if fn is None:
            load = _providers.get(op)
            if load is None:
                raise ValueError(f"unknown head operation {op!r}; known: {', '.join(operations())}")
            handlers = dict(load())
            missing = [name for name, provider in _providers.items() if provider is load and name not in handlers]
            if missing:
                raise ValueError(f"the provider of head operations {missing} does not define them")
            _OPS.update(handlers)
            fn = _OPS[op]
    return fn


def handle_request(head: Any, op: OpName, kwargs: dict) -> Any:
    """Run operation ``op`` on the head with ``kwargs`` and return its result."""
    return _handler(op)(head, **kwargs)


# ----------------------------------------------------------- deferred answers
# A handler that must wait for something (a relayed process blocked in Queue.get) must not
# block the head's service thread: it takes the answering function and returns DEFERRED;
# whoever holds that function answers later, from any thread, exactly once.
DEFERRED = object()
Reply = Callable[[bool, Any], None]  # (ok, result or exception)
_answering = threading.local()


def answer_with(reply: Optional[Reply]) -> None:
    """Set (or clear, with None) how the request being handled on this thread is answered."""
    _answering.reply = reply


def take_reply(optional: bool = False) -> Optional[Reply]:
    """The answering function of the request being handled here (for a handler that defers);
    ``optional``: None for a request that wants no answer, instead of an error."""
    reply = getattr(_answering, "reply", None)
    if reply is None:
        if optional:
            return None
        raise RuntimeError("this request cannot be answered later (it was not sent by another process)")
    _answering.reply = None
    return reply
