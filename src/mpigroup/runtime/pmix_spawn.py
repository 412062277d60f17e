"""Start an MPI program's world with ``PMIx_Spawn`` (ctypes over the MPI library's libpmix).

Why not ``MPI_Comm_spawn``: it connects parent and children
(``PMIx_Connect``), and with Open MPI 5.0.11 (PRRTE 3.0.14) that connect is
broken when they sit on different nodes (``pmix_server_dyn.c:1113``); a world
spanning hosts then prints that error, its disconnect never returns, and a
second such world crashed ``prterun`` (double free). A PMI pass-through
world needs no parent at all: its ranks only talk among themselves. A job
started with ``PMIx_Spawn`` gets no ``OMPI_PARENT_PORT``, so Open MPI's
``MPI_Init`` does not connect back (``ompi_dpm_dyn_init``), and repeated
worlds across hosts run clean (docs/architecture.md, "Across hosts").

Only the PMIx v4+ calls that need no knowledge of ``pmix_info_t``'s layout
are used (``PMIx_Info_list_*``); ``pmix_app_t`` is declared here.
"""
from __future__ import annotations

import ctypes
from typing import Optional, Sequence

from ..base.procs import loaded_library
from ..errors import PMIxSpawnError

__all__ = ["PMIxSpawnError", "available", "spawn_world"]

PMIX_BOOL = 1
PMIX_STRING = 3
PMIX_NSPACE_LEN = 256


class _DataArray(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint16), ("size", ctypes.c_size_t), ("array", ctypes.c_void_p)]


class _App(ctypes.Structure):
    _fields_ = [("cmd", ctypes.c_char_p), ("argv", ctypes.POINTER(ctypes.c_char_p)),
                ("env", ctypes.POINTER(ctypes.c_char_p)), ("cwd", ctypes.c_char_p),
                ("maxprocs", ctypes.c_int), ("info", ctypes.c_void_p), ("ninfo", ctypes.c_size_t)]


def _loaded_libpmix() -> Optional[ctypes.CDLL]:
    """The libpmix this process's MPI already initialised (None without one, e.g. MPICH)."""
    lib = loaded_library("libpmix.so")
    if lib is None:
        return None
    for name in ("PMIx_Spawn", "PMIx_Info_list_start", "PMIx_Info_list_add", "PMIx_Info_list_convert",
                 "PMIx_Info_list_release"):
        if not hasattr(lib, name):
            return None
    lib.PMIx_Info_list_start.restype = ctypes.c_void_p
    lib.PMIx_Info_list_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint16]
    lib.PMIx_Info_list_convert.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DataArray)]
    lib.PMIx_Info_list_release.argtypes = [ctypes.c_void_p]
    lib.PMIx_Spawn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_App), ctypes.c_size_t,
                               ctypes.c_char_p]
    lib.PMIx_Error_string.restype = ctypes.c_char_p
    lib.PMIx_Error_string.argtypes = [ctypes.c_int]
    return lib


def available() -> bool:
    return _loaded_libpmix() is not None


class _Keep:
    """Holds every ctypes buffer until the call returns."""

    def __init__(self) -> None:
        self.items: list = []

    def argv(self, items: Sequence[str]):
        arr = (ctypes.c_char_p * (len(items) + 1))(*[s.encode() for s in items], None)
        self.items.append(arr)
        return arr


def _info_array(lib, keep: _Keep, pairs: Sequence[tuple[str, object]]) -> _DataArray:
    handle = lib.PMIx_Info_list_start()
    try:
        for key, value in pairs:
            if isinstance(value, bool):
                data = ctypes.c_bool(value)
                keep.items.append(data)
                rc = lib.PMIx_Info_list_add(handle, key.encode(), ctypes.byref(data), PMIX_BOOL)
            else:
                data = ctypes.c_char_p(str(value).encode())
                keep.items.append(data)
                rc = lib.PMIx_Info_list_add(handle, key.encode(), data, PMIX_STRING)
            if rc != 0:
                raise PMIxSpawnError(f"PMIx_Info_list_add({key}): {lib.PMIx_Error_string(rc).decode()}")
        out = _DataArray()
        rc = lib.PMIx_Info_list_convert(handle, ctypes.byref(out))
        if rc != 0:
            raise PMIxSpawnError(f"PMIx_Info_list_convert: {lib.PMIx_Error_string(rc).decode()}")
        keep.items.append(out)
        return out
    finally:
        lib.PMIx_Info_list_release(handle)


def spawn_world(apps: Sequence[tuple[str, list[str], dict, int, str]], cwd: str) -> str:
    """Start one job: ``apps`` = [(command, argv without argv[0], env, count, host)]; returns its nspace.

    Ranks are numbered in app order. Oversubscription is allowed and binding
    left to the ranks, as for every other spawn of the runtime.
    """
    lib = _loaded_libpmix()
    if lib is None:
        raise PMIxSpawnError("no PMIx v4+ library is loaded in this process")
    keep = _Keep()
    arr = (_App * len(apps))()
    for slot, (command, argv, env, count, host) in zip(arr, apps):
        info = _info_array(lib, keep, [("pmix.host", host)])
        slot.cmd = command.encode()
        slot.argv = keep.argv([command, *argv])
        slot.env = keep.argv([f"{k}={v}" for k, v in env.items()])
        slot.cwd = cwd.encode()
        slot.maxprocs = count
        slot.info = info.array
        slot.ninfo = info.size
    job = _info_array(lib, keep, [("pmix.mapby", ":OVERSUBSCRIBE"), ("pmix.bindto", "none")])
    nspace = ctypes.create_string_buffer(PMIX_NSPACE_LEN)
    rc = lib.PMIx_Spawn(job.array, job.size, arr, len(apps), nspace)
    if rc != 0:
        raise PMIxSpawnError(f"PMIx_Spawn failed: {lib.PMIx_Error_string(rc).decode()} ({rc})")
    return nspace.value.decode()
