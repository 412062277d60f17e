"""Launch benchmark: wall time to start AND join a group of N processes.

Run on the mpigroup runtime (the head process runs this script)::

    python -m mpigroup benchmarks/bench_launch.py [--sizes 1,4,16,64] [--repeats N] [--markdown out.md]

Contenders, each timed from "nothing exists" to "every process has finished":

* ``mpigroup-python``  ProcessGroup + ProcessTemplate(noop): build, start(), join(), close().
* ``mpigroup-exec``    the same with ProcessTemplate("/bin/true"); mpigroup runs it
                       under a Python worker rank.
* ``raw-spawn``        MPI.COMM_SELF.Spawn of N ``python -c`` children that import
                       mpi4py.MPI and disconnect from the parent; the parent
                       disconnects too. The baseline.
* ``raw-spawn+exit``   (informational) raw-spawn, then also wait until every child
                       process is gone (its pid vanishes), which is what
                       ProcessGroup.join() waits for. Turn off with --no-raw-exit.
* ``mp-spawn``         multiprocessing "spawn" context: start N Process(target=noop),
                       then join them all.

``--across-hosts`` (run under ``mpiexec`` with one initial rank per host, e.g.
on the namespace cluster: ``scripts/mini_cluster.sh up 2``, then
``scripts/mini_cluster.sh exec h1 mpiexec --host h1:1,h2:1 -n 2 python -m
mpigroup benchmarks/bench_launch.py --across-hosts``) splits every group
round-robin over the hosts and compares:

* ``mpigroup-python``  as above, members placed on the hosts in turn;
* ``raw-spawn``        raw ``MPI_Comm_spawn`` of N children on the head's host,
                       as above: the baseline. A raw spawn across the hosts
                       cannot be repeated with Open MPI 5.0.11 (from the second
                       job on a remote host, MPI traffic with it fails; see
                       docs/architecture.md), so it cannot be a timed baseline;
                       ``--contenders raw-spawn-hosts`` tries it (one
                       ``Spawn_multiple`` with an entry per host, children leave
                       right after ``MPI_Init``) to show the failure.

A raw MPI_Comm_spawn of /bin/true is not possible (a non-MPI program never
connects back, so the spawn never completes), so mpigroup-exec is compared
against raw Python spawn as well.

Contenders run interleaved round-robin per repeat so machine drift hits all of
them alike; the smallest size gets ``--warmup`` untimed rounds first (the first
spawn of an MPI singleton also starts Open MPI's PRRTE daemon).

Only the standard library is imported at module level: multiprocessing spawn
children re-import this file as ``__mp_main__`` and only need ``noop``.
"""
from __future__ import annotations

import os
import sys


def noop() -> None:
    """The target of every Python contender (must be importable at top level)."""


CONTENDERS = ("mpigroup-python", "mpigroup-exec", "raw-spawn", "raw-spawn+exit", "mp-spawn", "raw-spawn-hosts")
BASELINE = "raw-spawn"
RAW_SPAWN_LIMIT = 1.3  # target: mpigroup-python / raw-spawn <= 1.3x
MP_SPAWN_FROM = 16  # target: mpigroup-python faster than mp-spawn for N >= 16
JOIN_TIMEOUT = 300.0

# The raw-spawn child. mpigroup exports its MPI defaults into every spawned
# rank's environment before MPI_Init; the raw child gets the same variables
# (passed as argv[2:] "K=V" strings) so both sides run the same MPI settings.
# argv[1] is "1" when the parent wants every child's pid (raw-spawn+exit).
RAW_CHILD = """\
import os, sys
send_pid = sys.argv[1] == "1"
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    os.environ.setdefault(k, v)
from mpi4py import MPI
parent = MPI.Comm.Get_parent()
if send_pid:
    parent.gather(os.getpid(), root=0)
parent.Disconnect()
"""


# ----------------------------------------------------------------- contenders
def run_mpigroup(n: int, target, hosts=None) -> None:
    from mpigroup import Policy, ProcessGroup, ProcessTemplate

    pg = ProcessGroup(name="bench")
    if hosts:
        for i in range(n):
            pg.add_process(1, ProcessTemplate(target, policy=Policy(host_name=hosts[i % len(hosts)])))
    else:
        pg.add_process(n, ProcessTemplate(target))
    try:
        pg.start()
        pg.join(timeout=JOIN_TIMEOUT)
    finally:
        pg.close()


def _mpi_env_args() -> list[str]:
    from mpigroup.base.mpienv import MPI_DEFAULTS

    names = [row[0] for row in MPI_DEFAULTS] + ["OPAL_PREFIX"]
    return [f"{k}={os.environ[k]}" for k in names if k in os.environ]


def run_raw_spawn(n: int, wait_exit: bool = False, host: str = "") -> None:
    from mpi4py import MPI

    info = MPI.Info.Create()
    if host:
        info.Set("host", host)
    info.Set("map_by", ":OVERSUBSCRIBE")
    info.Set("bind_to", "none")
    try:
        ic = MPI.COMM_SELF.Spawn(sys.executable, args=["-c", RAW_CHILD, "1" if wait_exit else "0", *_mpi_env_args()],
                                 maxprocs=n, info=info)
    finally:
        info.Free()
    pids = ic.gather(None, root=MPI.ROOT) if wait_exit else []
    ic.Disconnect()
    for pid in pids or ():
        _wait_pid_gone(pid)


RAW_HOSTS_CHILD = """\
import os, sys
for kv in sys.argv[1:]:
    k, _, v = kv.partition("=")
    os.environ.setdefault(k, v)
from mpi4py import MPI
os._exit(0)
"""


def run_raw_spawn_hosts(n: int, hosts) -> None:
    """Spawn_multiple with one entry per host; done when every child finished MPI_Init."""
    from mpi4py import MPI

    counts = [len(range(k, n, len(hosts))) for k in range(len(hosts))]
    infos = []
    for k, host in enumerate(hosts):
        info = MPI.Info.Create()
        info.Set("host", host)
        if k == 0:
            info.Set("map_by", ":OVERSUBSCRIBE")
            info.Set("bind_to", "none")
        infos.append(info)
    live = [k for k, c in enumerate(counts) if c]
    try:
        ic = MPI.COMM_SELF.Spawn_multiple([sys.executable] * len(live),
                                          [["-c", RAW_HOSTS_CHILD, *_mpi_env_args()]] * len(live),
                                          [counts[k] for k in live], [infos[k] for k in live])
    finally:
        for info in infos:
            info.Free()
    ic.Free()


def _wait_pid_gone(pid: int, timeout: float = JOIN_TIMEOUT) -> None:
    from harness import wait_pid_gone  # benchmarks/ is on sys.path when a benchmark runs

    wait_pid_gone(pid, timeout, max_delay=2e-3)


def run_mp_spawn(n: int) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=noop) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(JOIN_TIMEOUT)
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(f"mp-spawn: {len(bad)} process(es) failed, exit codes {bad[:5]}")


def contender_callables(n: int, names, hosts=None) -> dict:
    if hosts:
        table = {"mpigroup-python": lambda: run_mpigroup(n, noop, hosts),
                 "raw-spawn": lambda: run_raw_spawn(n, host=hosts[0]),
                 "raw-spawn-hosts": lambda: run_raw_spawn_hosts(n, hosts)}
        return {name: table[name] for name in names if name in table}
    table = {
        "mpigroup-python": lambda: run_mpigroup(n, noop),
        "mpigroup-exec": lambda: run_mpigroup(n, "/bin/true"),
        "raw-spawn": lambda: run_raw_spawn(n),
        "raw-spawn+exit": lambda: run_raw_spawn(n, wait_exit=True),
        "mp-spawn": lambda: run_mp_spawn(n),
    }
    return {name: table[name] for name in names}


# ----------------------------------------------------------------------- main
def parse_args(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4,16,64", help="comma-separated group sizes (default 1,4,16,64)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size and contender (default 3)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed rounds before the smallest size (default 1)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS[:-1]),
                    help=f"comma-separated subset of {','.join(CONTENDERS)}")
    ap.add_argument("--no-raw-exit", action="store_true", help="skip the raw-spawn+exit contender")
    ap.add_argument("--markdown", metavar="PATH", help="also write a RESULTS.md section to PATH")
    ap.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    ap.add_argument("--across-hosts", action="store_true",
                    help="split each group over every host of the allocation (mpigroup-python and raw-spawn)")
    args = ap.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        ap.error("--sizes must be positive integers")
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}")
    if args.no_raw_exit:
        names = [c for c in names if c != "raw-spawn+exit"]
    args.contenders = [c for c in CONTENDERS if c in names]  # fixed order
    if args.across_hosts:
        explicit = "raw-spawn-hosts" in names
        args.contenders = [c for c in args.contenders
                           if c in ("mpigroup-python", "raw-spawn") or (c == "raw-spawn-hosts" and explicit)]
    else:
        args.contenders = [c for c in args.contenders if c != "raw-spawn-hosts"]
    return args


def main(argv=None) -> int:
    import time

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from harness import Table, command_line, compare, format_machine, markdown_report

    args = parse_args(argv)
    if "mpigroup.runtime.context" not in sys.modules:
        print("warning: not started with `python -m mpigroup`; mpigroup will start its runtime "
              "on first use", file=sys.stderr)
    command = command_line(prefix=[sys.executable, "-m", "mpigroup"])
    print(f"bench_launch: sizes {args.sizes}, repeats {args.repeats}, warmup {args.warmup} "
          f"(smallest size), contenders {', '.join(args.contenders)}")
    print("\n".join(format_machine()), flush=True)

    hosts = None
    if args.across_hosts:
        from mpigroup import Node, System

        hosts = [Node(n).hostname for n in System().nodes]
        if len(hosts) < 2:
            print("error: --across-hosts needs an allocation of 2 or more hosts (one initial rank each)",
                  file=sys.stderr)
            return 2
        print(f"across hosts: {', '.join(hosts)}")
    title = f"Launch across {len(hosts)} hosts: start + join N processes" if hosts else \
        "Launch: start + join N processes"
    table = Table(title, unit="s", baseline=BASELINE)
    for pair in (("mpigroup-python", "mp-spawn"), ("mpigroup-exec", "mp-spawn"),
                 ("mpigroup-python", "raw-spawn+exit")):
        table.add_ratio(*pair)

    progress = None if args.quiet else (lambda line: print(line, flush=True))
    t_all = time.perf_counter()
    for i, n in enumerate(args.sizes):
        print(f"\nN={n}", flush=True)
        timings = compare(contender_callables(n, args.contenders, hosts), repeats=args.repeats,
                          warmup=args.warmup if i == 0 else 0, progress=progress)
        for name, timing in timings.items():
            table.add_timing(f"N={n}", name, timing)
    elapsed = time.perf_counter() - t_all

    names = set(args.contenders)
    for n in args.sizes:
        case = f"N={n}"
        if {"mpigroup-python", "raw-spawn"} <= names and not hosts:
            table.check(case, "mpigroup-python", "raw-spawn", RAW_SPAWN_LIMIT, "<=",
                        "mpigroup-python within 1.3x of raw MPI spawn (raw ends at Disconnect)")
        if {"mpigroup-python", "raw-spawn+exit"} <= names:
            table.check(case, "mpigroup-python", "raw-spawn+exit", RAW_SPAWN_LIMIT, "<=",
                        "mpigroup-python within 1.3x of raw MPI spawn, both waiting for process exit")
        if n >= MP_SPAWN_FROM and {"mpigroup-python", "mp-spawn"} <= names:
            table.check(case, "mpigroup-python", "mp-spawn", 1.0, "<",
                        f"mpigroup-python faster than multiprocessing spawn for N >= {MP_SPAWN_FROM}")

    table.note("Values are the median wall time of start + join over the repeats "
               f"({args.repeats} per cell).")
    table.note("raw-spawn = MPI.COMM_SELF.Spawn of `python -c` children that import mpi4py.MPI "
               "and Disconnect; it ends when the parent's Disconnect returns (children may still "
               "be finalizing). raw-spawn+exit also waits until every child pid is gone, "
               "as ProcessGroup.join() does.")
    table.note("mpigroup-exec (/bin/true) is compared against raw Python spawn too: MPI_Comm_spawn "
               "of a non-MPI executable never completes, so there is no raw executable baseline.")
    if hosts:
        table.note(f"mpigroup-python places the N members on {', '.join(hosts)} in turn (members on "
                   "other hosts are started by their node agent); raw-spawn spawns all N on the head's "
                   "host, because a raw spawn across hosts cannot be repeated with Open MPI 5.0.11.")
    table.note("All contenders run inside the mpigroup head (an MPI singleton with the runtime's "
               "service thread), interleaved round-robin per repeat.")

    print()
    print(table.format_text())
    met = [c.met for c in table.checks]
    print(f"\n{sum(1 for m in met if m)}/{len(met)} targets met; benchmark took {elapsed:.1f} s")

    if args.markdown:
        text = markdown_report("Launch (bench_launch.py)", command, [table],
                               notes=[f"Benchmark wall time: {elapsed:.1f} s."])
        with open(args.markdown, "w") as fh:
            fh.write(text)
        print(f"markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
