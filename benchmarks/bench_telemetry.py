"""Telemetry overhead: the same Pool workload with telemetry off and at level 3, side by side.

Run from the repository root with a plain Python (it starts every run itself
with ``python -m mpigroup``, because the telemetry level is fixed when a run
starts)::

    python benchmarks/bench_telemetry.py [--repeats 7] [--tasks 400] [--markdown out.md]

Each run creates ``Pool(2)``, warms it up, then times ``pool.map(task,
range(tasks), chunksize=1)`` where a task is a fixed pure-Python loop (about
20 ms of CPU on an idle core; the table gives the measured time per task)
and records one user metric (``Telemetry().add_data``), as an instrumented
application would. At level 3 the run also has its node monitor (psutil
every second, NVML tried once), the head's aggregator thread, the SQLite
store and the HTTP endpoint. Runs alternate off/on (the order flips every
repeat); the slowdown is median(on) / median(off) - 1 of the timed map, with
the whole run's wall time (start-up and shutdown included) beside it. Each
run also times ``add_data`` itself, on the head and in a pool worker.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 0.02  # the bound on the slowdown


# ----------------------------------------------------------------- the child run
def task(i: int) -> tuple:
    """The work item: a fixed loop and one user metric; returns (result, CPU seconds it used)."""
    from mpigroup import Telemetry

    c0 = time.process_time()
    s = 0
    for k in range(_WORK):
        s += k * k
    Telemetry().add_data("bench_task", float(i % 7), tags={"pid": os.getpid()})
    return s, time.process_time() - c0


_WORK = 800_000  # about 20 ms in CPython 3.11 on the 2-core VM


def add_data_cost(n: int) -> float:
    """Microseconds per add_data call in this process."""
    from mpigroup import Telemetry

    t = Telemetry()
    t0 = time.perf_counter()
    for i in range(n):
        t.add_data("bench_cost", 1.0)
    return (time.perf_counter() - t0) / n * 1e6


def _monitor_cpu() -> float:
    """CPU seconds used so far by this run's node monitor processes (0 with telemetry off)."""
    import psutil

    from mpigroup.runtime import context
    from mpigroup.telemetry import service

    svc = service.current()
    if svc is None or svc._monitors is None:
        return 0.0
    total = 0.0
    for puid in svc._monitors.puids:
        pid = context.current().head.members[puid].pid
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def child(tasks: int) -> None:
    from mpigroup import Pool, Telemetry

    with Pool(2) as pool:
        pool.map(task, range(8), chunksize=1)  # warm: workers up, universe joined
        mon0, head0 = _monitor_cpu(), time.process_time()
        t0 = time.perf_counter()
        results = pool.map(task, range(tasks), chunksize=1)
        elapsed = time.perf_counter() - t0
        head_cpu, mon_cpu = time.process_time() - head0, _monitor_cpu() - mon0
        # after the timed part: the samples these make must not load the aggregator during it
        worker_cost = pool.apply(add_data_cost, (2000,))
    head_cost = add_data_cost(20000)
    assert len(results) == tasks
    print("BENCH " + json.dumps({"map_s": elapsed, "head_add_us": head_cost, "worker_add_us": worker_cost,
                                 "head_cpu_s": head_cpu, "monitor_cpu_s": mon_cpu,
                                 "task_cpu_s": sum(c for _, c in results), "level": Telemetry().level}), flush=True)


# ----------------------------------------------------------------- the driver
def run_once(level: int, tasks: int, tmp: str) -> dict:
    env = dict(os.environ, MPIGROUP_TELEMETRY_LEVEL=str(level), MPIGROUP_TELEMETRY_PORT="0",
               MPIGROUP_TELEMETRY_DIR=tmp)
    cmd = [sys.executable, "-m", "mpigroup", os.path.abspath(__file__), "--child", "--tasks", str(tasks)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    match = re.search(r"^BENCH (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"run at level {level} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    out = json.loads(match.group(1))
    out["wall_s"] = wall
    if level:
        from mpigroup.telemetry.runstore import RunStore

        run = RunStore(re.search(r"data in (\S+)", proc.stderr).group(1))
        out["samples"] = run.count()
        out["host_samples"] = sum(len(s.points) for s in run.query("system_load_average"))
        run.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--markdown")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.tasks)
        return
    tmp = tempfile.mkdtemp(prefix="bench-telemetry-")
    runs: dict[int, list] = {0: [], 3: []}
    try:
        for rep in range(args.repeats):
            for level in ((0, 3) if rep % 2 == 0 else (3, 0)):
                r = run_once(level, args.tasks, tmp)
                runs[level].append(r)
                extra = f"  samples {r['samples']} ({r['host_samples']} load-average)" if level else ""
                print(f"repeat {rep + 1} level {level}: map {r['map_s']:.3f} s  wall {r['wall_s']:.2f} s  "
                      f"cpu: tasks {r['task_cpu_s']:.3f} s head {r['head_cpu_s']:.3f} s "
                      f"monitor {r['monitor_cpu_s']:.3f} s  "
                      f"add_data head {r['head_add_us']:.2f} us worker {r['worker_add_us']:.2f} us{extra}",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(level, key):
        return statistics.median(r[key] for r in runs[level])

    def low(level, key):
        return min(r[key] for r in runs[level])

    slow_med = med(3, "map_s") / med(0, "map_s") - 1
    slow_min = low(3, "map_s") / low(0, "map_s") - 1
    wall_med = med(3, "wall_s") / med(0, "wall_s") - 1
    spread = (max(r["map_s"] for r in runs[0]) - low(0, "map_s")) / med(0, "map_s")

    def cpu(level):
        return med(level, "task_cpu_s") + med(level, "head_cpu_s") + med(level, "monitor_cpu_s")

    cpu_over = cpu(3) / cpu(0) - 1
    own = (med(3, "head_cpu_s") - med(0, "head_cpu_s") + med(3, "monitor_cpu_s")) / med(0, "task_cpu_s")
    lines = [
        f"Pool(2), {args.tasks} tasks of {_WORK:,} pure-Python loop iterations each "
        f"({med(0, 'map_s') * 2 / args.tasks * 1e3:.0f} ms per task per worker here, telemetry off) plus one "
        f"`add_data` per task, `map(chunksize=1)`; {args.repeats} runs per level, alternating.", "",
        "| | telemetry off (level 0) | level 3 | level 3 / off |",
        "|---|---|---|---|",
        f"| timed map, median | {med(0, 'map_s'):.3f} s | {med(3, 'map_s'):.3f} s | {1 + slow_med:.3f}x |",
        f"| timed map, min | {low(0, 'map_s'):.3f} s | {low(3, 'map_s'):.3f} s | {1 + slow_min:.3f}x |",
        f"| whole run wall time, median | {med(0, 'wall_s'):.2f} s | {med(3, 'wall_s'):.2f} s | {1 + wall_med:.3f}x |",
        f"| CPU of the tasks during the map, median | {med(0, 'task_cpu_s'):.3f} s | {med(3, 'task_cpu_s'):.3f} s | "
        f"{med(3, 'task_cpu_s') / med(0, 'task_cpu_s'):.3f}x |",
        f"| CPU of the head during the map, median | {med(0, 'head_cpu_s'):.3f} s | {med(3, 'head_cpu_s'):.3f} s | |",
        f"| CPU of the node monitor during the map, median | - | {med(3, 'monitor_cpu_s'):.3f} s | |",
        f"| total CPU for the same work (tasks + head + monitor) | {cpu(0):.3f} s | {cpu(3):.3f} s | "
        f"{1 + cpu_over:.3f}x |",
        f"| `add_data` on the head, median | {med(0, 'head_add_us') * 1000:.0f} ns | "
        f"{med(3, 'head_add_us'):.2f} µs | |",
        f"| `add_data` in a pool worker, median | {med(0, 'worker_add_us') * 1000:.0f} ns | "
        f"{med(3, 'worker_add_us'):.2f} µs | |",
        "",
        f"Samples stored per level-3 run: {statistics.median(r['samples'] for r in runs[3]):.0f} (median), of which "
        f"{statistics.median(r['host_samples'] for r in runs[3]):.0f} load-average readings.",
        f"Spread of the telemetry-off runs (max - min) / median: {spread * 100:.1f}%.",
        "",
        f"Target: slowdown under {TARGET * 100:.0f}%. Timed map: median {slow_med * 100:+.2f}% "
        f"({'met' if slow_med < TARGET else 'NOT met'}), min {slow_min * 100:+.2f}% "
        f"({'met' if slow_min < TARGET else 'NOT met'}). CPU for the same work: {cpu_over * 100:+.2f}% "
        f"({'met' if cpu_over < TARGET else 'NOT met'}). Telemetry's own CPU (extra head CPU + monitor CPU) "
        f"over the tasks' CPU: {own * 100:.2f}% ({'met' if own < TARGET else 'NOT met'}).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
