"""``python -m mpigroup [script.py | -m module | -c code] [args]`` on every initial rank.

Rank 0 becomes the head and runs the user's program as ``__main__`` on its
main thread; the other initial ranks become node agents. An unhandled
exception in the program is printed, every spawned process is stopped, the
agents are told to leave, and the head exits non-zero, which mpiexec reports.

Usage errors of the command line are printed (they are the command's answer);
the runtime's own diagnostics go through :mod:`logging`.
"""
from __future__ import annotations

import enum
import importlib.util
import logging
import os
import runpy
import signal
import sys
import traceback
from typing import Optional

from .. import __version__
from ..base import config, procs, sharing
from ..errors import MPIGroupError
from ..runtime import context

log = logging.getLogger(__name__)


class ProgramKind(str, enum.Enum):
    """What ``python -m mpigroup`` was asked to run (compares equal to its value)."""

    PATH = "path"
    MODULE = "module"
    CODE = "code"

USAGE = """usage: python -m mpigroup [-h] [--version] (script.py | -m module | -c code) [args...]

Run a Python program as the head of an mpigroup runtime. Under
`mpiexec -n N`, rank 0 is the head and the other ranks are node agents;
without mpiexec the program runs as an MPI singleton on this machine.
"""


def parse(argv: list[str]) -> tuple[ProgramKind, str, list[str]]:
    """(kind, what, sys.argv for the program)."""
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0)
    if not argv:
        print(USAGE + "\nerror: no program given", file=sys.stderr)
        raise SystemExit(2)
    if argv[0] == "--version":
        print(f"mpigroup {__version__}")
        raise SystemExit(0)
    if argv[0] == "-m":
        if len(argv) < 2:
            print("error: -m needs a module name", file=sys.stderr)
            raise SystemExit(2)
        return ProgramKind.MODULE, argv[1], [argv[1]] + argv[2:]
    if argv[0] == "-c":
        if len(argv) < 2:
            print("error: -c needs a command", file=sys.stderr)
            raise SystemExit(2)
        return ProgramKind.CODE, argv[1], ["-c"] + argv[2:]
    if argv[0].startswith("-"):
        print(f"error: unknown option {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    if not os.path.isfile(argv[0]):
        print(f"error: script not found: {argv[0]}", file=sys.stderr)
        raise SystemExit(2)
    return ProgramKind.PATH, argv[0], argv


def run_program(kind: ProgramKind, what: str, prog_argv: list[str]) -> None:
    """Run the user's program as ``__main__`` on this thread, with ``sys.argv`` set to ``prog_argv``."""
    sys.argv = prog_argv
    if kind == ProgramKind.PATH:
        sys.path.insert(0, os.path.dirname(os.path.abspath(what)))
        runpy.run_path(what, run_name="__main__")
    elif kind == ProgramKind.MODULE:
        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(what)
        except (ImportError, ValueError):
            found = None
        if found is None:
            log.error("no module named %r", what)
            raise SystemExit(2)
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    else:
        sys.path.insert(0, "")
        exec(compile(what, "<string>", "exec"), {"__name__": "__main__"})


def _start_telemetry() -> None:
    """Start the head's telemetry service when MPIGROUP_TELEMETRY_LEVEL > 0 (imported only then)."""
    try:
        if not config.get("MPIGROUP_TELEMETRY_LEVEL"):
            return
        from ..telemetry import service  # MPI, prometheus-client: only when telemetry is on

        service.start()
    except (ValueError, OSError, ImportError) as exc:  # ValueError: a SettingError
        log.error("telemetry: %s", exc)
        raise SystemExit(1) from None


class _Terminated(BaseException):
    """SIGTERM (mpiexec passes Ctrl-C on as SIGTERM) turned into an orderly exit."""


def _raise_terminated(signum, _frame) -> None:
    raise _Terminated(signum)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kind, what, prog_argv = parse(argv)
    try:
        ctx = context.bootstrap_initial()
    except (ValueError, MPIGroupError) as exc:  # e.g. a malformed MPIGROUP_GPUS, two nodes with one name
        log.error("%s", exc)
        return 2
    # mpiexec answers Ctrl-C with SIGTERM to every rank, then SIGKILL: clean up
    # on SIGTERM at once (quick shutdown) instead of dying mid-way
    signal.signal(signal.SIGTERM, _raise_terminated)
    if ctx.role == "agent":
        try:
            return context.agent_main()
        except _Terminated:
            # the launcher is tearing the job down and may SIGKILL the head
            # before it cleans up: remove the run dir here too, skip MPI_Finalize
            context.remove_run_dir(ctx.run_dir)
            os._exit(128 + signal.SIGTERM)
    code = 0
    patience, urgent = 3.0, False
    try:
        _start_telemetry()
        run_program(kind, what, prog_argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)  # what the interpreter prints for sys.exit("text")
    except KeyboardInterrupt:
        log.warning("interrupted")
        code, patience = 130, 1.0
    except _Terminated:
        log.warning("terminated")
        code, urgent = 128 + signal.SIGTERM, True
    except BaseException:
        traceback.print_exc()  # the program's own traceback, as the interpreter prints it
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        context.shutdown_head(patience, urgent=urgent)
    # The agents were told to stop; the head's own exit status is what
    # mpiexec reports (spawned ranks always leave their shims with 0).
    if context.LOST_HOSTS:
        # MPI_Finalize would wait for the agents of the lost hosts forever
        _exit_without_mpi_finalize(code, alone_only=False)
    if sharing.universe_used():  # the agents were told to leave the same way
        _exit_without_mpi_finalize(code, alone_only=False)
    return code


def _exit_without_mpi_finalize(code: int, alone_only: bool = True) -> None:
    """Leave like a worker (PMIx_Finalize, then _exit) once shared objects were used.

    After ULFM shrinks, Open MPI 5.0.11's MPI_Finalize sometimes aborts on a
    corrupted heap (seen in pmix_hwloc_finalize and mca_coll_ftagree_era_finalize,
    after the run's work was complete). With agents on other ranks the head
    must finalize with them (they wait in its fence), so this applies to a
    head that is alone in COMM_WORLD: a singleton, or `mpiexec -n 1`.
    """
    from mpi4py import MPI  # initialised by now; imported here so the launcher module itself loads no MPI

    if alone_only and MPI.COMM_WORLD.Get_size() != 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    procs.finalize_pmix()
    os._exit(code)
