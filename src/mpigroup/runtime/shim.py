"""The launch shims that record how every spawned process ended.

MPI tells a parent nothing about a child's exit status, and a rank killed by a
signal cannot report it itself. So every spawned rank starts under a shim that
waits for the real process and writes ``<run_dir>/status/<set_key>.<rank>.exit``
with the raw status. The head (or the node agent on other hosts) scans that
directory; a file there means the process is gone, never a guess.

* Python ranks run under ``/bin/sh`` (about 1 ms): ``$?`` is ``128+N`` for a
  process killed by signal N. The shim's own stderr goes to /dev/null so the
  shell's "Killed" notice does not reach the user; the worker keeps the
  original stderr through fd 3.
* MPI executables (PMI pass-through) run under ``python -m mpigroup.runtime.shim``
  which also applies cwd, environment, CPU affinity and output redirection
  before starting the program, and writes ``<set_key>.<rank>.pid``. Its rank
  specs travel in the spawn arguments, so no shared filesystem is needed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

SH_SHIM = (
    'exec 3>&2 2>/dev/null\n'
    'd="$1"; k="$2"; h="$3"; shift 3\n'
    '[ $# -gt 0 ] && export "$@"\n'
    '"$0" -m mpigroup.worker "$d" "$k" "$h" 2>&3 3>&- &\n'
    'wait $!\n'
    's=$?\n'
    'f="$d/status/$k.${PMIX_RANK:-${PMI_RANK:-0}}"\n'
    'printf "%s\\n" "$s" > "$f.tmp" && mv "$f.tmp" "$f.exit"\n'
    'exit 0\n'
)


def python_rank_command(python: str, run_dir: str, set_key: str, head: str, env: list[str]) -> tuple[str, list[str]]:
    """(command, argv) for MPI_Comm_spawn of a Python worker rank under the sh shim.

    ``head`` is "host:pid" of the head, so a rank can tell it is gone even
    before its boot message arrives. ``env`` ("K=V" strings) is exported
    before the worker's MPI_Init: a spawned
    job's environment otherwise comes from the PRRTE daemon, not from us.
    """
    return "/bin/sh", ["-c", SH_SHIM, python, run_dir, set_key, head, *env]


def exec_rank_command(python: str, run_dir: str, set_key: str, first: int, encoded: str) -> tuple[str, list[str]]:
    """(command, argv) for an MPI executable rank under the Python shim."""
    return python, ["-m", "mpigroup.runtime.shim", run_dir, set_key, str(first), encoded]


SPECS_ENV = "MPIGROUP_PMI_SPECS"  # the rank specs, when they travel in the environment
SPECS_FROM_ENV = "-"  # what the command line says instead of the specs then


def decode_status(raw: int) -> int:
    """Shell status to multiprocessing-style exit code (negative for signals)."""
    if raw > 128 and raw - 128 < 65:
        return -(raw - 128)
    return raw


def collect_status_files(status_dir: str) -> list[tuple]:
    """Read and remove what the shims wrote: [("exited"|"pid", set_key, rank, value, error)].

    An ``.exit`` file holds the raw status on its first line and, for a
    Python rank of a PMI world that raised, a JSON [type, message, traceback]
    on the second; ``error`` is that list or None.

    Files are written atomically (tmp + rename), so a name ending in .exit or
    .pid is always complete. Used by the head and by node agents.
    """
    try:
        names = os.listdir(status_dir)
    except FileNotFoundError:
        return []
    events = []
    for name in names:
        stem, dot, kind = name.rpartition(".")
        if kind not in ("exit", "pid") or not dot:
            continue
        path = os.path.join(status_dir, name)
        try:
            with open(path) as fh:
                text = fh.read()
            os.unlink(path)
            set_key, rank = stem.rsplit(".", 1)
            error = None
            if kind == "exit":
                first, _, rest = text.partition("\n")
                value = int(first.strip() or "0")
                error = json.loads(rest) if rest.strip() else None
            else:
                value = int(json.loads(text)["pid"])
        except (OSError, ValueError, KeyError):
            continue
        events.append(("exited" if kind == "exit" else "pid", set_key, int(rank), value, error))
    return events


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
    import base64

    run_dir, set_key, first, encoded = argv
    if encoded == SPECS_FROM_ENV:
        encoded = os.environ.pop(SPECS_ENV)
    rank = os.environ.get("PMIX_RANK") or os.environ.get("PMI_RANK") or "0"
    spec = json.loads(base64.b64decode(encoded))[int(rank) - int(first)]
    base = os.path.join(run_dir, "status", f"{set_key}.{rank}")
    env = dict(os.environ)
    env.update(spec.get("env") or {})
    env["MPIGROUP_ERROR_FILE"] = base + ".error"  # a Python rank that raises leaves its traceback here
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
        print(f"mpigroup: cannot start {spec['argv'][0]!r}: {exc}", file=sys.stderr)
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
