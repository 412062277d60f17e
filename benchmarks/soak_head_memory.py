"""Soak: does the head's memory stay flat over many spawned sets? (issue 15, item 7)

Run on the mpigroup runtime (the head process runs this script)::

    python -m mpigroup benchmarks/soak_head_memory.py [--cycles 1000] [--every 50]
    python -m mpigroup benchmarks/soak_head_memory.py --variants process,group --cycles 300
    mpiexec -n 2 python -m mpigroup benchmarks/soak_head_memory.py --cycles 300   # head + one agent

Each variant runs ``--cycles`` start+join cycles one after the other, in the
same head process, and samples the head's resident set size (``VmRSS`` from
``/proc/self/status``) every ``--every`` cycles:

* ``process``  ``mpigroup.Process(target=noop)``: ``start()``, ``join()``.
* ``group``    ``ProcessGroup`` of ``--group-size`` (default 2) ``noop`` members:
               ``start()``, ``join()``, ``close()``.
* ``raw-free`` (no mpigroup) ``MPI.COMM_SELF.Spawn`` of one ``python -c`` child
               that leaves like an mpigroup worker (``PMIx_Finalize``, then
               ``os._exit``); the parent waits for the pid to go and calls
               ``Comm.Free`` on the intercommunicator. Open MPI's own cost.
* ``raw-disconnect`` (no mpigroup) the same child calls
               ``Get_parent().Disconnect()`` and the parent ``Disconnect()``:
               what a clean MPI disconnect releases.

The raw variants initialise MPI in this process exactly as the runtime does
(they run after it, in the same head), so they separate mpigroup's growth
from Open MPI's. Every variant starts with ``--warmup`` untimed cycles (the
first spawn of a singleton also starts PRRTE's DVM); the RSS at the end of
the warmup is the start value.

Printed per variant: a table of the samples (RSS, its growth since the start,
the head's ``sets``/``members`` table sizes, open file descriptors, threads
and, with ``--tracemalloc``, the Python heap), then the growth per cycle (a
least-squares slope over the samples) and in total. The issue's target,
RSS flat within 5 MiB over 1,000 cycles, is printed as MET / NOT MET
(extrapolated when ``--cycles`` is smaller). It is a soak, not a test: the
exit status is 0 whatever the numbers are.

Only the standard library is imported at module level (workers re-import
this file to find ``noop``).
"""
from __future__ import annotations

import os
import sys
import time

TARGET_MIB = 5.0  # issue 15, item 7: RSS flat within 5 MiB ...
TARGET_CYCLES = 1000  # ... over 1,000 start+join cycles
JOIN_TIMEOUT = 120.0
VARIANTS = ("process", "group", "raw-free", "raw-disconnect")


def noop() -> None:
    """The target of every mpigroup cycle (importable at top level)."""


# --------------------------------------------------------------- sampling
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _dvm_rss_kib() -> int:
    """RSS of the singleton's PRRTE daemon (``prte``, a child of this process); -1 without one."""
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if fields[1] == me and comm.startswith("prte"):
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1])
            except OSError:
                pass
    return -1


def _head():
    from mpigroup.runtime import context

    return context.current().head


def sample(cycle: int, traced: bool) -> dict:
    """One row: RSS and what might hold it."""
    import threading

    head = _head()
    row = {
        "cycle": cycle,
        "rss_kib": _status_kib("VmRSS"),
        "hwm_kib": _status_kib("VmHWM"),
        "anon_kib": _status_kib("RssAnon"),
        "sets": len(head.sets) if head is not None else -1,
        "members": len(head.members) if head is not None else -1,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "os_threads": _status_kib("Threads"),
        "dvm_kib": _dvm_rss_kib(),
    }
    if traced:
        import tracemalloc

        row["py_kib"] = tracemalloc.get_traced_memory()[0] // 1024
    return row


# ------------------------------------------------------------------ cycles
def cycle_process() -> None:
    import mpigroup

    p = mpigroup.Process(target=noop)
    p.start()
    p.join(JOIN_TIMEOUT)
    if p.exitcode != 0:
        raise RuntimeError(f"process exited with {p.exitcode}")


def cycle_group(size: int) -> None:
    from mpigroup import ProcessGroup, ProcessTemplate

    pg = ProcessGroup(name="soak")
    pg.add_process(size, ProcessTemplate(noop))
    try:
        pg.start()
        pg.join(timeout=JOIN_TIMEOUT)
    finally:
        pg.close()


# The raw child gets mpigroup's MPI defaults as argv "K=V" strings (PRRTE's
# DVM may have started before they were set). argv[1]: "disconnect" or "exit".
RAW_CHILD = """\
import os, sys, ctypes
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    os.environ.setdefault(k, v)
from mpi4py import MPI
parent = MPI.Comm.Get_parent()
parent.send(os.getpid(), dest=0, tag=1)
if sys.argv[1] == "disconnect":
    parent.Disconnect()
    os._exit(0)
with open("/proc/self/maps") as fh:
    paths = {line.split()[-1] for line in fh if "libpmix.so" in line}
for path in paths:
    ctypes.CDLL(path, mode=os.RTLD_NOLOAD).PMIx_Finalize(None, ctypes.c_size_t(0))
    break
os._exit(0)
"""


def _raw_env_args() -> list[str]:
    from mpigroup.base.mpienv import MPI_DEFAULTS

    names = [row[0] for row in MPI_DEFAULTS] + ["OPAL_PREFIX", "PATH"]
    return [f"{k}={os.environ[k]}" for k in names if k in os.environ]


def _wait_pid_gone(pid: int, timeout: float = JOIN_TIMEOUT) -> None:
    from harness import wait_pid_gone  # benchmarks/ is on sys.path when a benchmark runs

    wait_pid_gone(pid, timeout, max_delay=5e-3)


def cycle_raw(disconnect: bool) -> None:
    from mpi4py import MPI

    info = MPI.Info.Create()
    info.Set("map_by", ":OVERSUBSCRIBE")
    info.Set("bind_to", "none")
    try:
        ic = MPI.COMM_SELF.Spawn(sys.executable, maxprocs=1, info=info,
                                 args=["-c", RAW_CHILD, "disconnect" if disconnect else "exit", *_raw_env_args()])
    finally:
        info.Free()
    pid = ic.recv(source=0, tag=1)
    if disconnect:
        ic.Disconnect()
        _wait_pid_gone(pid)
    else:
        _wait_pid_gone(pid)
        ic.Free()


def cycle_fn(variant: str, group_size: int):
    return {
        "process": cycle_process,
        "group": lambda: cycle_group(group_size),
        "raw-free": lambda: cycle_raw(False),
        "raw-disconnect": lambda: cycle_raw(True),
    }[variant]


# ----------------------------------------------------------------- report
def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def run_variant(variant: str, cycles: int, every: int, warmup: int, group_size: int,
                traced: bool, quiet: bool) -> dict:
    import gc

    fn = cycle_fn(variant, group_size)
    for _ in range(warmup):
        fn()
    gc.collect()
    rows = [sample(0, traced)]
    t0 = time.monotonic()
    for i in range(1, cycles + 1):
        fn()
        if i % every == 0 or i == cycles:
            gc.collect()
            rows.append(sample(i, traced))
            if not quiet:
                r = rows[-1]
                print(f"  {variant:<15} cycle {i:>6}  rss {r['rss_kib'] / 1024:8.1f} MiB  "
                      f"+{(r['rss_kib'] - rows[0]['rss_kib']) / 1024:7.1f} MiB  "
                      f"{time.monotonic() - t0:7.1f} s", flush=True)
    elapsed = time.monotonic() - t0
    per_cycle = slope([r["cycle"] for r in rows], [r["rss_kib"] for r in rows])
    total = (rows[-1]["rss_kib"] - rows[0]["rss_kib"]) / 1024
    procs = cycles * (group_size if variant == "group" else 1)
    return {"variant": variant, "rows": rows, "cycles": cycles, "procs": procs, "elapsed": elapsed,
            "per_cycle_kib": per_cycle, "total_mib": total,
            "extrapolated_mib": per_cycle * TARGET_CYCLES / 1024}


def format_result(res: dict, traced: bool):
    rows = res["rows"]
    base = rows[0]["rss_kib"]
    header = ["cycle", "RSS MiB", "growth MiB", "anon MiB", "sets", "members", "fds", "threads", "prte MiB"]
    if traced:
        header.append("py heap KiB")
    body = []
    for r in rows:
        cells = [str(r["cycle"]), f"{r['rss_kib'] / 1024:.1f}", f"{(r['rss_kib'] - base) / 1024:+.1f}",
                 f"{r['anon_kib'] / 1024:.1f}", str(r["sets"]), str(r["members"]), str(r["fds"]),
                 f"{r['threads']}/{r['os_threads']}",
                 "-" if r["dvm_kib"] < 0 else f"{r['dvm_kib'] / 1024:.1f}"]
        if traced:
            cells.append(str(r["py_kib"]))
        body.append(cells)
    met = abs(res["extrapolated_mib"]) <= TARGET_MIB and (res["cycles"] < TARGET_CYCLES or
                                                         abs(res["total_mib"]) <= TARGET_MIB)
    per_proc = res["per_cycle_kib"] * res["cycles"] / max(1, res["procs"])
    summary = [
        f"RSS at start {base / 1024:.1f} MiB, after {res['cycles']} cycles {rows[-1]['rss_kib'] / 1024:.1f} MiB: "
        f"{res['total_mib']:+.1f} MiB in total",
        f"growth {res['per_cycle_kib']:.1f} KiB per cycle ({per_proc:.1f} KiB per spawned process), "
        f"{res['extrapolated_mib']:+.1f} MiB per {TARGET_CYCLES} cycles; "
        f"{res['elapsed']:.0f} s, {res['elapsed'] / res['cycles'] * 1000:.0f} ms per cycle",
        f"[{'MET' if met else 'NOT MET':>7}] RSS flat within {TARGET_MIB:g} MiB over {TARGET_CYCLES} cycles"
        + (" (extrapolated)" if res["cycles"] < TARGET_CYCLES else ""),
    ]
    return header, body, summary


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=1000, help="start+join cycles per variant (default 1000)")
    ap.add_argument("--every", type=int, default=50, help="sample RSS every N cycles (default 50)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed cycles before the start sample (default 5)")
    ap.add_argument("--variants", default="process",
                    help=f"comma-separated, of {', '.join(VARIANTS)} (default process)")
    ap.add_argument("--group-size", type=int, default=2, help="members per group in the group variant (default 2)")
    ap.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap (slower)")
    ap.add_argument("--markdown", metavar="PATH", help="also write a RESULTS.md section to PATH")
    ap.add_argument("--quiet", action="store_true", help="no per-sample progress lines")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}")
    if args.cycles < 1 or args.every < 1:
        ap.error("--cycles and --every must be positive")

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import _fixed_width, _md_table, command_line, markdown_report

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    from mpigroup.runtime import context

    ctx = context.current()
    if ctx.role != "head":
        print("soak_head_memory: run it with `python -m mpigroup`; this process is not the head", file=sys.stderr)
        return 0
    world = getattr(ctx.head.world, "Get_size", lambda: 1)()
    launch = "singleton head" if world == 1 else f"under mpiexec, {world} initial ranks"
    print(f"soak_head_memory: {launch}, pid {os.getpid()}, variants {', '.join(variants)}, "
          f"{args.cycles} cycles each", flush=True)

    results = []
    for variant in variants:
        results.append(run_variant(variant, args.cycles, args.every, args.warmup, args.group_size,
                                   args.tracemalloc, args.quiet))

    sections = []
    for res in results:
        header, body, summary = format_result(res, args.tracemalloc)
        title = f"Head RSS, {res['variant']} ({launch})"
        print("\n" + title + "\n" + "=" * len(title))
        print(_fixed_width(header, body))
        for line in summary:
            print(line)
        sections.append((title, header, body, summary))
    if args.markdown:
        text = markdown_report("Head memory soak", command_line(prefix=[sys.executable, "-m", "mpigroup"]), [])
        for title, header, body, summary in sections:
            text += f"\n### {title}\n\n" + _md_table(header, body) + "\n\n" + "\n".join(f"- {s}" for s in summary) + "\n"
        with open(args.markdown, "w") as fh:
            fh.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
