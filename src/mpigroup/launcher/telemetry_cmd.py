"""``mpigroup top`` and ``mpigroup telemetry {ls,show,plot}`` (no MPI needed).

The ``mpigroup`` command builds these parsers for every command, so the
telemetry modules (sqlite3, urllib.request, tqdm, matplotlib) are imported
inside the commands that use them. Error lines are the commands' answers and
are printed to stderr, as argparse prints its own.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["add_parsers", "cmd_top", "cmd_telemetry"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    top = sub.add_parser("top", help="live tqdm bars per node from a running head's telemetry endpoint")
    top.add_argument("--url", help="endpoint, e.g. http://127.0.0.1:8000 (default: 127.0.0.1 and --port)")
    top.add_argument("--port", type=int, help="endpoint port (default: MPIGROUP_TELEMETRY_PORT or 8000)")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    top.add_argument("--once", action="store_true", help="draw one frame and exit")
    top.add_argument("--wait", type=float, default=10.0,
                     help="with --once: seconds to wait for the first node metrics (default 10)")
    tel = sub.add_parser("telemetry", help="inspect the telemetry of a run: ls, show, plot")
    tsub = tel.add_subparsers(dest="telemetry_command", metavar="{ls,show,plot}")
    tsub.add_parser("ls", help="list the runs under the telemetry directory")
    show = tsub.add_parser("show", help="nodes, metrics and newest values of a run")
    show.add_argument("run", nargs="?", default="latest", help="run directory, run id, or 'latest' (default)")
    plot = tsub.add_parser("plot", help="draw a run's time series into a PNG (matplotlib)")
    plot.add_argument("run", nargs="?", default="latest", help="run directory, run id, or 'latest' (default)")
    plot.add_argument("-o", "--output", required=True, help="PNG file to write")
    plot.add_argument("--metric", action="append", default=[], help="only this metric (repeatable)")


def cmd_top(ns: argparse.Namespace) -> int:
    from ..telemetry import config
    from ..telemetry.top import run_top

    if ns.interval <= 0:
        print("mpigroup top: error: --interval must be positive", file=sys.stderr)
        return 2
    try:
        url = ns.url or f"http://127.0.0.1:{ns.port if ns.port is not None else config.port()}"
        return run_top(url, interval=ns.interval, once=ns.once, wait=ns.wait)
    except (ConnectionError, ValueError) as exc:
        print(f"mpigroup top: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"mpigroup top: error: needs the 'telemetry' extra (tqdm): {exc}", file=sys.stderr)
        return 1


def _open(run: str):
    from ..telemetry import config
    from ..telemetry.runstore import RunStore, resolve_run

    return RunStore(resolve_run(run, config.base_dir()))


def _when(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def cmd_telemetry(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..telemetry import config

    try:
        if ns.telemetry_command == "ls":
            base = config.base_dir()
            runs = sorted(d for d in (os.listdir(base) if os.path.isdir(base) else [])
                          if os.path.isfile(os.path.join(base, d, "run.json")))
            if not runs:
                print(f"no telemetry runs under {base}")
            for name in runs:
                meta = _open(os.path.join(base, name)).meta()
                print(f"{name}  level {meta.get('level')}  {_when(meta.get('start'))} -> {_when(meta.get('end'))}"
                      f"  nodes {','.join(meta.get('nodes') or [])}  samples {meta.get('samples', '?')}")
            return 0
        if ns.telemetry_command == "show":
            run = _open(ns.run)
            meta = run.meta()
            print(f"run {run.run_dir}\nlevel {meta.get('level')}  {_when(meta.get('start'))} -> "
                  f"{_when(meta.get('end'))}  endpoint {meta.get('url')}")
            print(f"nodes: {', '.join(run.nodes())}  samples: {run.count()}")
            for metric in run.metrics():
                for s in run.query(metric):
                    tags = ",".join(f"{k}={v}" for k, v in sorted(s.tags.items()))
                    last = s.points[-1][1] if s.points else float("nan")
                    print(f"  {metric}{{{tags}}}  {len(s.points)} samples, last {last:g}")
            run.close()
            return 0
        if ns.telemetry_command == "plot":
            from ..telemetry.plot import plot_run

            run = _open(ns.run)
            drawn = plot_run(run, ns.output, ns.metric or None)
            run.close()
            print(f"wrote {ns.output}: {len(drawn)} panels ({', '.join(drawn)})")
            return 0
    except (FileNotFoundError, ValueError) as exc:
        print(f"mpigroup telemetry: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"mpigroup telemetry: error: needs matplotlib (pip install 'mpigroup[telemetry]'): {exc}",
              file=sys.stderr)
        return 1
    parser.print_usage(sys.stderr)
    print("mpigroup telemetry: error: give a command: ls, show or plot", file=sys.stderr)
    return 2
