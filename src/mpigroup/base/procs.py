"""Facts about processes of this node: liveness and the files this process maps."""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["pid_alive", "mapped_files"]


def pid_alive(pid: int) -> bool:
    """Whether a process of this node still exists (a pid owned by someone else counts as alive)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def mapped_files(keep: Callable[[str], bool] = lambda path: True) -> set[str]:
    """Paths of the files mapped into this process (``/proc/self/maps``) for which ``keep`` is true.

    Empty where there is no ``/proc`` (not Linux).
    """
    try:
        with open("/proc/self/maps") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return set()
    paths = set()
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/") and keep(fields[5]):
            paths.add(fields[5])
    return paths
