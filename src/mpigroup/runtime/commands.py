"""The command lines of spawned ranks, and the exit-status files their launch shims write.

MPI tells a parent nothing about a child's exit status, and a rank killed by a
signal cannot report it itself. So every spawned rank starts under a shim that
waits for the real process and writes ``<run_dir>/status/<set_key>.<rank>.exit``
with the raw status. The head (or the node agent on other hosts) scans that
directory; a file there means the process is gone, never a guess.

* Python ranks run under ``/bin/sh`` (about 1 ms): ``$?`` is ``128+N`` for a
  process killed by signal N. The shim's own stderr goes to /dev/null so the
  shell's "Killed" notice does not reach the user; the worker keeps the
  original stderr through fd 3.
* MPI executables (PMI pass-through) run under ``python -m mpigroup.worker.shim``
  (:mod:`mpigroup.worker.shim`, with every other program of a spawned process),
  which also applies cwd, environment, CPU affinity and output redirection
  before starting the program, and writes ``<set_key>.<rank>.pid``. Its rank
  specs travel in the spawn arguments, so no shared filesystem is needed.

This module is the runtime's side (no MPI): the commands, and reading the
files back as the :class:`~.protocol.Exited` and :class:`~.protocol.PidKnown`
messages that a node agent forwards.
"""
from __future__ import annotations

import json
import os
from typing import Union

from .protocol import Exited, PidKnown

SHIM_MODULE = "mpigroup.worker.shim"  # the Python launch shim (a module path, not an import)
WORKER_MODULE = "mpigroup.worker"  # the Python worker rank
PMI_PYTHON_MODULE = "mpigroup.worker.pmi_python"  # a Python rank of a PMI world

SH_SHIM = (
    'exec 3>&2 2>/dev/null\n'
    'd="$1"; k="$2"; h="$3"; shift 3\n'
    '[ $# -gt 0 ] && export "$@"\n'
    '"$0" -m ' + WORKER_MODULE + ' "$d" "$k" "$h" 2>&3 3>&- &\n'
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
    return python, ["-m", SHIM_MODULE, run_dir, set_key, str(first), encoded]


SPECS_ENV = "MPIGROUP_PMI_SPECS"  # the rank specs, when they travel in the environment
SPECS_FROM_ENV = "-"  # what the command line says instead of the specs then
PAYLOAD_ENV = "MPIGROUP_PMI_PAYLOAD"  # a PMI Python rank's target (base64 cloudpickle)
ERROR_FILE_ENV = "MPIGROUP_ERROR_FILE"  # where a PMI Python rank that raised leaves its traceback


def decode_status(raw: int) -> int:
    """Shell status to multiprocessing-style exit code (negative for signals)."""
    if raw > 128 and raw - 128 < 65:
        return -(raw - 128)
    return raw


def collect_status_files(status_dir: str) -> list[Union[Exited, PidKnown]]:
    """Read and remove what the shims wrote, as the messages that report it.

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
        events.append(Exited(set_key, int(rank), value, error) if kind == "exit" else
                      PidKnown(set_key, int(rank), value))
    return events
