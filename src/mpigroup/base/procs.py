"""Facts about processes of this node: liveness and the files this process maps."""
from __future__ import annotations

import os
from typing import Callable

__all__ = ["pid_alive", "mapped_files", "finalize_pmix"]


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


def finalize_pmix() -> None:
    """Finalize PMIx (not MPI) so the launcher counts this process's exit as orderly.

    ``MPI_Finalize`` would wait for the whole spawned set to disconnect; a
    process that exits with no finalize at all is "terminated without sync"
    to PRRTE, which may then tear down the set. ``PMIx_Finalize`` alone tells
    the PMIx server we are leaving on purpose. Only for a libpmix already
    loaded into this process (Open MPI's); a no-op elsewhere.
    """
    import ctypes

    for path in mapped_files(lambda p: "libpmix.so" in p):
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)
            lib.PMIx_Finalize(None, ctypes.c_size_t(0))
        except (OSError, AttributeError):
            pass
        return
