"""Facts about processes of this node: liveness and the files this process maps."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    import ctypes

__all__ = ["pid_alive", "process_gone", "mapped_files", "loaded_library", "finalize_pmix"]


def pid_alive(pid: int) -> bool:
    """Whether a process of this node still exists (a pid owned by someone else counts as alive)."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this node has exited (a zombie not yet reaped counts as exited)."""
    if not pid_alive(pid):
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return not pid_alive(pid)  # no /proc, or it vanished meanwhile


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


_loaded: dict = {}  # name part -> CDLL of a library this process has mapped (kept once found)


def loaded_library(name_part: str) -> Optional["ctypes.CDLL"]:
    """The library already mapped into this process whose path contains ``name_part``, or None.

    Opened with ``RTLD_NOLOAD`` (never loads anything); the first match in
    path order is kept for the process, since a mapped library stays mapped.
    """
    lib = _loaded.get(name_part)
    if lib is None:
        import ctypes

        paths = sorted(mapped_files(lambda path: name_part in os.path.basename(path)))
        if not paths:
            return None
        try:
            lib = ctypes.CDLL(paths[0], mode=os.RTLD_NOLOAD)
        except OSError:
            return None
        _loaded[name_part] = lib
    return lib


def finalize_pmix() -> None:
    """Finalize PMIx (not MPI) so the launcher counts this process's exit as orderly.

    ``MPI_Finalize`` would wait for the whole spawned set to disconnect; a
    process that exits with no finalize at all is "terminated without sync"
    to PRRTE, which may then tear down the set. ``PMIx_Finalize`` alone tells
    the PMIx server we are leaving on purpose. Only for a libpmix already
    loaded into this process (Open MPI's); a no-op elsewhere.
    """
    import ctypes

    lib = loaded_library("libpmix.so")
    try:
        if lib is not None:
            lib.PMIx_Finalize(None, ctypes.c_size_t(0))
    except AttributeError:
        pass
