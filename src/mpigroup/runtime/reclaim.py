"""Reclaim the run directories and /dev/shm segments of runs whose head was killed (issue 15, item 8).

A head that ends normally, or by SIGTERM, removes its run directory and a
singleton's Open MPI segments itself. A SIGKILLed singleton head leaves
both: ``mpigroup-<pid>-XXXX`` in the temp directory, and
``/dev/shm/sm_segment.HOST.UID.JOB.RANK`` (Open MPI's shared-memory BTL; under
``mpiexec`` PRRTE removes its own and the run directory lives inside
``PMIX_SERVER_TMPDIR``, which PRRTE removes too). So every head, at start:

* records in its run directory who owns it (:func:`record_owner`): its pid,
  its start time (``/proc/PID/stat``), the boot id, and the /dev/shm segments
  a singleton has mapped;
* removes the run directories in the temp directory whose owner is gone
  (:func:`reclaim_stale_runs`): same uid only; a pid that exists again
  protects a directory only if that process started before the directory was
  made (or has the recorded start time); a directory recorded by another pid
  namespace (a container sharing the temp dir) is left alone; a directory's
  recorded segments go with it. Nothing else in /dev/shm is touched: only names recorded by a dead
  run of this user, owned by this user.
"""
from __future__ import annotations

import json
import logging
import os
import re
import stat
import tempfile
from typing import Optional

from ..base.procs import mapped_files

__all__ = ["OWNER_FILE", "own_segments", "record_owner", "reclaim_stale_runs"]

log = logging.getLogger(__name__)

OWNER_FILE = "owner.json"
SHM_DIR = "/dev/shm"
SEGMENT_PREFIXES = ("sm_segment.", "osc_sm.")
_RUN_DIR = re.compile(r"^mpigroup-(\d+)-[^/]+$")


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _start_ticks(pid: int) -> Optional[int]:
    """A process's start time in clock ticks since boot (None if it does not exist)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_time() -> Optional[float]:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def own_segments() -> list[str]:
    """Names of the Open MPI /dev/shm segments this process has mapped."""
    return sorted(os.path.basename(p) for p in mapped_files(lambda p: p.startswith(SHM_DIR + "/"))
                  if os.path.basename(p).startswith(SEGMENT_PREFIXES))


def record_owner(run_dir: str, singleton: bool, segments: Optional[list[str]] = None) -> None:
    """Write who owns ``run_dir`` (and a singleton's segments) for a later run's :func:`reclaim_stale_runs`.

    Open MPI maps a singleton's segments lazily (the first spawn), so the
    head calls this again when they change.
    """
    if segments is None:
        segments = own_segments() if singleton else []
    owner = {"pid": os.getpid(), "start": _start_ticks(os.getpid()), "boot": _boot_id(),
             "pidns": _pid_namespace(), "segments": segments}
    path = os.path.join(run_dir, OWNER_FILE)
    try:
        with open(path + ".tmp", "w") as fh:
            json.dump(owner, fh)
        os.replace(path + ".tmp", path)
    except OSError as exc:
        log.debug("could not record the owner of %s: %s", run_dir, exc)


def _read_owner(path: str) -> Optional[dict]:
    try:
        with open(os.path.join(path, OWNER_FILE)) as fh:
            owner = json.load(fh)
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def _owner_alive(pid: int, owner: Optional[dict], made: float) -> bool:
    """Whether the head that made a run directory (at time ``made``) still runs."""
    if owner is not None and owner.get("pidns", "") != _pid_namespace():
        return True  # another pid namespace (a container sharing this temp dir): its pids mean nothing here
    start = _start_ticks(pid)
    if start is None:
        return False  # no such process on this node
    if owner is not None:
        if owner.get("boot") and owner["boot"] != _boot_id():
            return False  # made before a reboot
        if isinstance(owner.get("start"), int):
            return owner["start"] == start  # the same process, not a reused pid
    boot = _boot_time()
    if boot is None:
        return True  # cannot tell: keep it
    started = boot + start / os.sysconf("SC_CLK_TCK")
    return started <= made + 1.0  # a process that started after the directory was made is not its owner


def _unlink_segment(name: str, uid: int) -> bool:
    if "/" in name or not name.startswith(SEGMENT_PREFIXES):
        return False
    path = os.path.join(SHM_DIR, name)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
            return False
        os.unlink(path)
        return True
    except OSError:
        return False


def reclaim_stale_runs(base: Optional[str] = None) -> list[str]:
    """Remove the run directories under ``base`` (the temp dir) of this user's dead heads; returns them.

    Their recorded /dev/shm segments are unlinked too. Never raises.
    """
    from .context import remove_run_dir

    base = base or tempfile.gettempdir()
    uid = os.getuid()
    try:
        names = os.listdir(base)
    except OSError:
        return []
    reclaimed = []
    for name in names:
        match = _RUN_DIR.match(name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        owner = _read_owner(path)
        if _owner_alive(int(match.group(1)), owner, min(st.st_ctime, st.st_mtime)):
            continue
        segments = [s for s in (owner or {}).get("segments", []) if isinstance(s, str) and _unlink_segment(s, uid)]
        remove_run_dir(path)
        reclaimed.append(path)
        log.info("reclaimed the run directory %s of a dead head (pid %s)%s", path, match.group(1),
                 f" and its segments {', '.join(segments)}" if segments else "")
    return reclaimed
