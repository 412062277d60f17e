"""``python -m mpigroup.worker.shim``: the launch shim of an MPI executable rank (PMI pass-through).

It applies the rank's cwd, environment, CPU affinity and output redirection,
starts the program, writes ``<set_key>.<rank>.pid`` and, once the program
ended, ``<set_key>.<rank>.exit`` in the node's run directory (see
:mod:`mpigroup.runtime.commands`, which builds this command line and reads
the files back). It never initialises MPI: the program is the rank.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys

from ..base import config
from ..runtime.commands import ERROR_FILE_ENV, SPECS_ENV, SPECS_FROM_ENV

log = logging.getLogger(__name__)


def _write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _open_stream(mode, default_fd: int):
    if mode is None:
        return None
    if mode == "devnull":
        return subprocess.DEVNULL
    if mode == "stdout":
        return subprocess.STDOUT
    return open(mode, "ab")


def main(argv: list[str]) -> int:
    """Run one MPI executable rank: argv = [run_dir, set_key, first_rank, specs_b64]."""
    run_dir, set_key, first, encoded = argv
    if encoded == SPECS_FROM_ENV:
        encoded = config.get(SPECS_ENV)
        os.environ.pop(SPECS_ENV, None)  # the program must not inherit every rank's specs
    rank = os.environ.get("PMIX_RANK") or os.environ.get("PMI_RANK") or "0"
    spec = json.loads(base64.b64decode(encoded))[int(rank) - int(first)]
    base = os.path.join(run_dir, "status", f"{set_key}.{rank}")
    env = dict(os.environ)
    env.update(spec.get("env") or {})
    env[ERROR_FILE_ENV] = base + ".error"  # a Python rank that raises leaves its traceback here
    cpus = spec.get("cpus")

    def preexec() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    try:
        proc = subprocess.Popen(
            spec["argv"],
            cwd=spec.get("cwd") or None,
            env=env,
            stdout=_open_stream(spec.get("stdout"), 1),
            stderr=_open_stream(spec.get("stderr"), 2),
            preexec_fn=preexec,
        )
    except OSError as exc:
        log.error("cannot start %r: %s", spec["argv"][0], exc)
        _write_atomic(base + ".exit", "127\n")
        return 0
    _write_atomic(base + ".pid", json.dumps({"pid": proc.pid, "host": os.uname().nodename}))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: proc.send_signal(s))
    code = proc.wait()
    raw = 128 - code if code < 0 else code
    error = ""
    try:
        with open(base + ".error") as fh:
            error = fh.read()
        os.unlink(base + ".error")
    except OSError:
        pass
    _write_atomic(base + ".exit", f"{raw}\n{error}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
