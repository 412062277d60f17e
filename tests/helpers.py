"""Run programs on the runtime the way users do, and inspect what is left."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

from mpigroup.base.mpienv import mpiexec_path

REPO = Path(__file__).resolve().parents[1]
E2E_SCRIPTS = REPO / "tests" / "e2e" / "scripts"


def copy_script(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    """Copy ``tests/e2e/scripts/<name>`` into ``tmp_path`` (as ``as_name``) and return the copy.

    The tests run the copy, not the original: a run's working directory is the
    script's folder (see :func:`run_mpigroup`), so what a script writes next to
    itself stays in the test's own ``tmp_path``.
    """
    path = tmp_path / (as_name or name)
    shutil.copyfile(E2E_SCRIPTS / name, path)
    return path


def run_mpigroup(script: Path, *args: str, np: int | None = None, timeout: float = 120,
                 env: dict | None = None, tag: str | None = None) -> subprocess.CompletedProcess:
    """`python -m mpigroup script args` (singleton) or under `mpiexec -n np`."""
    cmd = [sys.executable, "-m", "mpigroup", str(script), *args]
    if np is not None:
        cmd = [mpiexec_path(os.environ), "-n", str(np), *cmd]
    full_env = dict(os.environ)
    full_env["MPIGROUP_TEST_TAG"] = tag or uuid.uuid4().hex
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=script.parent)


def run_mpigroup_private_shm(script: Path, *args: str, timeout: float = 120, tag: str | None = None,
                             ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Like :func:`run_mpigroup`, with a /dev/shm of its own; returns the files left in it at the end.

    Other runs on this machine (a parallel CI job, a user's run) create and
    remove segments in the machine's /dev/shm at any time, so a leak check
    that compares the machine's /dev/shm before and after is not about this
    run alone. The run gets a private mount namespace (a user namespace too
    when not root) with an empty tmpfs on /dev/shm, listed when it ends.
    """
    listing = script.parent / f"shm-left-{uuid.uuid4().hex}.txt"
    inner = ('mount -t tmpfs -o size=2g,mode=1777 mpigroup-test-shm /dev/shm || exit 97; "$@"; rc=$?; '
             f'ls -A /dev/shm > "{listing}"; exit $rc')
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare[1:1] = ["--user", "--map-root-user"]
    cmd = [*unshare, "sh", "-c", inner, "sh", sys.executable, "-m", "mpigroup", str(script), *args]
    env = dict(os.environ)
    env["MPIGROUP_TEST_TAG"] = tag or uuid.uuid4().hex
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=script.parent)
    assert proc.returncode != 97, f"could not mount a private /dev/shm: {proc.stderr}"
    left = listing.read_text().split() if listing.exists() else ["<no listing: the run did not finish>"]
    return proc, left


def processes_with_tag(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose environment carries MPIGROUP_TEST_TAG=tag."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if proc.environ().get("MPIGROUP_TEST_TAG") == tag:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def wait_no_processes(tag: str, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    left = processes_with_tag(tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = processes_with_tag(tag)
    return left
