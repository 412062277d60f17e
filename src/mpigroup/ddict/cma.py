"""Single-copy reads from a manager's memory on the same node (Linux cross-memory attach).

A ``d[key]`` of a large value on the manager's node asks the manager where
the stored blob lies and copies it with ``process_vm_readv`` straight into a
new buffer of the client: one copy, where the RMA ring path makes two (into
the ring, out of it). It is the kernel-assisted single copy that MPI
libraries use for large messages within a node (Open MPI's CMA). The manager
then counts, in a shared word, every request that may free a stored blob
after such an address was handed out; a client keeps its copy only if that
count did not move while it copied, and otherwise reads the value again
through the ring. Pure ctypes, no MPI.

``MPIGROUP_DDICT_CMA=0`` turns these reads off (every get then uses the
rings). Where the kernel refuses them (no ``CAP_SYS_PTRACE`` across users, a
seccomp filter, a non-Linux system), the first refusal is reported once with
a RuntimeWarning and later gets use the rings.
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
import warnings
from typing import Optional

import numpy as np

from ..base import config

MIN_BYTES = 64 << 10  # below this a blob travels in the reply itself (one request either way)

_PR_SET_PTRACER = 0x59616D61  # Yama: let another process of this user attach (read our memory)
_PR_SET_PTRACER_ANY = ctypes.c_ulong(-1).value


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Counters:
    """What this process's direct reads did (for tests and diagnosis)."""

    reads = 0  # values copied straight from a manager
    retries = 0  # copies dropped because the manager may have freed the blob meanwhile


_libc = None
_enabled: Optional[bool] = None  # None: not decided yet (MPIGROUP_DDICT_CMA is read on first use)


def _load():
    global _libc, _enabled
    if _libc is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.process_vm_readv
        except (OSError, AttributeError):
            _enabled = False
            return None
        fn.restype = ctypes.c_ssize_t
        fn.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                       ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
        _libc = libc
    return _libc


def enabled() -> bool:
    """True while direct reads are on for this process (``MPIGROUP_DDICT_CMA``, Linux, and no refusal yet)."""
    global _enabled
    if _enabled is None:
        _enabled = bool(config.cached("MPIGROUP_DDICT_CMA")) and sys.platform.startswith("linux")
    return _enabled and _load() is not None


def allow_readers() -> None:
    """Let processes of the same user read this one (needed under Yama ptrace_scope=1;
    a no-op where Yama is absent)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PTRACER, ctypes.c_ulong(_PR_SET_PTRACER_ANY), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def address_of(blob) -> int:
    """The address of a contiguous buffer's first byte in this process."""
    return int(np.frombuffer(blob, np.uint8).ctypes.data)


def read(pid: int, address: int, nbytes: int) -> Optional[np.ndarray]:
    """Copy ``nbytes`` at ``address`` in process ``pid`` into a new uint8 array.

    None if the copy did not happen in full (the process is gone, the memory
    was unmapped); then the caller reads another way. A refusal by the kernel
    turns direct reads off for this process, with one RuntimeWarning.
    """
    global _enabled
    libc = _load()
    if libc is None:
        return None
    out = np.empty(nbytes, np.uint8)
    local = _IOVec(out.ctypes.data, nbytes)
    remote = _IOVec(address, nbytes)
    got = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if got == nbytes:
        return out
    err = ctypes.get_errno() if got < 0 else 0
    if err in (errno.EPERM, errno.EACCES, errno.ENOSYS):
        _enabled = False
        warnings.warn(f"mpigroup DDict: reading a manager's memory directly was refused "
                      f"({errno.errorcode.get(err, err)}: {os.strerror(err)}); large gets in this process "
                      "now copy through the RMA rings (set MPIGROUP_DDICT_CMA=0 to skip the attempt)",
                      RuntimeWarning, stacklevel=3)
    return None
