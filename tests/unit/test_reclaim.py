"""Reclaiming dead heads' run directories (issue 15, item 8): what counts as dead."""
import json
import os
import subprocess
import sys

from mpigroup.runtime import reclaim


def _run_dir(base, pid, owner=None, suffix="abcd"):
    path = base / f"mpigroup-{pid}-{suffix}"
    (path / "status").mkdir(parents=True)
    if owner is not None:
        (path / reclaim.OWNER_FILE).write_text(json.dumps(owner))
    return path


def _owner(pid, start, **more):
    """An owner record as this node writes it (same boot, same pid namespace) unless ``more`` says otherwise."""
    return {"pid": pid, "start": start, "boot": reclaim._boot_id(), "pidns": reclaim._pid_namespace(), **more}


def test_dead_pid_reused_pid_and_live_owner(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        start = reclaim._start_ticks(sleeper.pid)
        dead = _run_dir(tmp_path, gone.pid)  # no owner record, pid gone
        reused = _run_dir(tmp_path, sleeper.pid, _owner(sleeper.pid, start + 1))
        rebooted = _run_dir(tmp_path, os.getppid(), _owner(os.getppid(), 1, boot="another-boot"))
        live = _run_dir(tmp_path, sleeper.pid, None, "live")  # no record, made after the sleeper started
        kept = _run_dir(tmp_path / "k", sleeper.pid, _owner(sleeper.pid, start))
        foreign = _run_dir(tmp_path, gone.pid, _owner(gone.pid, 1, pidns="pid:[1]"), "ns")
        other = tmp_path / "mpigroup-notapid-x"
        other.mkdir()
        gone_all = set(reclaim.reclaim_stale_runs(str(tmp_path)))
        assert gone_all == {str(dead), str(reused), str(rebooted)}
        assert live.is_dir() and other.is_dir() and foreign.is_dir()
        assert reclaim.reclaim_stale_runs(str(tmp_path / "k")) == [] and kept.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_only_recorded_segments_of_this_user_are_unlinked(tmp_path, monkeypatch):
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(reclaim, "SHM_DIR", str(shm))
    for name in ("sm_segment.h.0.1.0", "sm_segment.h.0.2.0", "other_program"):
        (shm / name).write_bytes(b"x")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    base = tmp_path / "tmp"
    recorded = ["sm_segment.h.0.1.0", "other_program", "../shm/other_program"]
    _run_dir(base, gone.pid, _owner(gone.pid, 1, segments=recorded))
    assert len(reclaim.reclaim_stale_runs(str(base))) == 1
    assert sorted(os.listdir(shm)) == ["other_program", "sm_segment.h.0.2.0"]
