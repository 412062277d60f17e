"""Shutdown hooks: how a lower layer runs the exit steps of the layers above it.

The head's and a worker's shutdown (in :mod:`mpigroup.runtime` and
:mod:`mpigroup.worker`) must flush queue feeders, stop the shared-object
service and stop telemetry, which live in packages above them. Those packages
register their steps here when they start them; the shutdown code runs a
*stage*, which calls the stage's hooks by priority (lower first), like
``multiprocessing.util.Finalize(exitpriority=)`` in reverse. A hook is
registered once per key; registering a key again replaces it.
"""
from __future__ import annotations

import enum
import logging
import threading
from typing import Any, Callable

__all__ = ["Stage", "register", "unregister", "run", "registered"]

log = logging.getLogger("mpigroup.base.shutdown")


class Stage(enum.Enum):
    """When a hook runs, in the order the head's shutdown reaches them."""

    TELEMETRY = "telemetry"        # first: monitors end, the last samples reach the store
    FLUSH = "flush"                # items this process put must reach their queues
    BEFORE_KILL = "before_kill"    # before the run's processes are terminated (a join needs them alive)
    AFTER_STOP = "after_stop"      # after the head stopped; returns False if MPI_Finalize would hang
    LEAVE = "leave"                # a spawned process leaves the shared-object universe


_hooks: dict[Stage, dict[str, tuple[int, Callable[..., Any]]]] = {stage: {} for stage in Stage}
_lock = threading.Lock()


def register(stage: Stage, key: str, hook: Callable[..., Any], priority: int = 50) -> None:
    """Run ``hook(**kwargs)`` when ``stage`` runs (hooks with a lower ``priority`` first)."""
    with _lock:
        _hooks[stage][key] = (priority, hook)


def unregister(stage: Stage, key: str) -> None:
    with _lock:
        _hooks[stage].pop(key, None)


def registered(stage: Stage) -> list[str]:
    """The keys of ``stage``'s hooks, in the order they run."""
    with _lock:
        return [key for key, _ in sorted(_hooks[stage].items(), key=lambda kv: kv[1][0])]


def run(stage: Stage, *, reraise: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Call the hooks of ``stage``; returns ``{key: result}``.

    A hook that raises is logged with its traceback and its result is the
    exception (``reraise`` raises it instead, after the other hooks ran).
    """
    with _lock:
        hooks = sorted(_hooks[stage].items(), key=lambda kv: kv[1][0])
    results: dict[str, Any] = {}
    first_error = None
    for key, (_, hook) in hooks:
        try:
            results[key] = hook(**kwargs)
        except Exception as exc:  # one failing step must not skip the others
            log.error("shutdown step %s (%s) failed", key, stage.value, exc_info=True)
            results[key] = exc
            first_error = first_error or exc
    if reraise and first_error is not None:
        raise first_error
    return results
