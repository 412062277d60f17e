"""How lower layers learn that this process uses shared objects.

Whether arguments it pickled hold shared-object handles:

A ``Queue``/``Event``/lock handle counts itself here when it is pickled
(:mod:`mpigroup.sync`); a ``ProcessTemplate`` (:mod:`mpigroup.group`, which
must not import ``sync``) compares the count before and after pickling its
arguments to know whether the new processes must join the shared-object
universe.
"""
from __future__ import annotations

import threading

__all__ = ["note_handle_pickled", "handles_pickled", "note_universe_used", "universe_used"]

_count = 0
_universe_used = False
_lock = threading.Lock()


def note_handle_pickled() -> None:
    """Called by a shared-object handle's ``__reduce__``."""
    global _count
    with _lock:
        _count += 1


def handles_pickled() -> int:
    """How many shared-object handles this process has pickled so far."""
    return _count


def note_universe_used() -> None:
    """Called when this process loads the shared-object universe (it may have joined it)."""
    global _universe_used
    _universe_used = True


def universe_used() -> bool:
    """Whether this process loaded the shared-object universe (exit paths differ after ULFM shrinks)."""
    return _universe_used
