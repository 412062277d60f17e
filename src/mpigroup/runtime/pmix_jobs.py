"""Drop what this process's PMIx client keeps about a finished spawned job.

Open MPI 5.0.x keeps, in every process that connected to a spawned job, the
PMIx client's copy of that job's data: a gds/hash job tracker (three hash
tables) plus the job, node and app info, about 90 KiB per job
(benchmarks/notes_head_memory.md). Neither ``MPI_Comm_free`` nor
``MPI_Comm_disconnect`` releases it (in 5.0.x ``ompi_dpm_disconnect`` is a
``PMIx_Fence`` only). The one call that does is ``PMIx_Disconnect_nb``: it
deletes the data of every other namespace it is given
(``PMIX_GDS_DEL_NSPACE``) before it contacts the server. It is called with
no callback (PMIx allows NULL), so nothing of Python's runs when the server
answers, and nothing waits for that answer.
"""
from __future__ import annotations

import ctypes
import logging
from typing import Optional

from ..base.procs import loaded_library
from .pmix_spawn import PMIX_NSPACE_LEN

__all__ = ["forget_job"]

log = logging.getLogger(__name__)


class _Proc(ctypes.Structure):
    """``pmix_proc_t``: a namespace and a rank."""

    _fields_ = [("nspace", ctypes.c_char * PMIX_NSPACE_LEN), ("rank", ctypes.c_uint32)]


_lib: Optional[ctypes.CDLL] = None
_looked = False


def _libpmix() -> Optional[ctypes.CDLL]:
    """The libpmix this process's MPI loaded, with PMIx_Disconnect_nb declared (None without one)."""
    global _lib, _looked
    if not _looked:
        _looked = True
        lib = loaded_library("libpmix.so")
        if lib is not None:
            try:
                fn = lib.PMIx_Disconnect_nb
            except AttributeError:
                return None
            fn.argtypes = [ctypes.POINTER(_Proc), ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                           ctypes.c_void_p, ctypes.c_void_p]
            fn.restype = ctypes.c_int
            _lib = lib
    return _lib


def forget_job(nspace: str) -> bool:
    """Release the PMIx client's data of job ``nspace``; call it once nobody talks to that job any more.

    Returns whether PMIx accepted the call. Only one rank of the job is
    named: the server then counts this process as the one local participant
    (naming this process as well makes PRRTE print "Not found" errors).
    """
    lib = _libpmix()
    if lib is None or not nspace or len(nspace.encode()) >= PMIX_NSPACE_LEN:
        return False
    proc = _Proc(nspace.encode(), 0)
    rc = lib.PMIx_Disconnect_nb(ctypes.byref(proc), 1, None, 0, None, None)
    if rc != 0:
        log.debug("PMIx_Disconnect_nb(%s) returned %d", nspace, rc)
    return rc == 0
