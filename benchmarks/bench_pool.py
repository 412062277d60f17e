"""Pool benchmark: mpigroup.Pool vs multiprocessing.Pool vs mpi4py.futures.MPIPoolExecutor, side by side.

Run on the mpigroup runtime (the head runs this script)::

    python -m mpigroup benchmarks/bench_pool.py [--quick] [--repeat N] [--markdown out.md]

Measured for each contender with 1, 2 and 4 workers (one contender alive at
a time; with ``--repeat N`` the three contenders take turns N times and each
cell is the median with the range):

* ``apply no-op``: no-op tasks per second submitted one by one
  (``apply_async``/``submit``) and collected afterwards;
* ``apply 1 ms``: the same with tasks that sleep 1 ms;
* ``map c=1``: items per second of ``map`` over no-op tasks with chunksize 1,
  the same chunksize for every contender;
* ``map c=n/4w``: items per second of ``map`` over 10,000 no-op items with
  ``chunksize = ceil(n / (4 x workers))``, multiprocessing's default, passed
  explicitly to every contender;
* ``first``: seconds from creating the pool to its first result.

mpi4py.futures workers are spawned ranks (``MPIPoolExecutor``);
multiprocessing uses its "spawn" context.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time


def noop(x=None):
    return x


def one_ms(x=None):
    time.sleep(0.001)
    return x


class Contender:
    def __init__(self, name, make, submit, result, mapper, close):
        self.name, self.make, self.submit, self.result, self.mapper, self.close = (
            name, make, submit, result, mapper, close)


def contenders():
    import multiprocessing

    import mpigroup

    def mp_make(n):
        return multiprocessing.get_context("spawn").Pool(n)

    def futures_make(n):
        from mpi4py.futures import MPIPoolExecutor

        from mpigroup.runtime.spawn import forwarded_env

        ex = MPIPoolExecutor(max_workers=n, env=forwarded_env())
        ex.bootup(wait=True)
        return ex

    return [
        Contender("mpigroup", lambda n: mpigroup.Pool(n), lambda p, f, x: p.apply_async(f, (x,)),
                  lambda r: r.get(60), lambda p, f, xs, c: p.map(f, xs, chunksize=c), lambda p: p.terminate()),
        Contender("mp.Pool", mp_make, lambda p, f, x: p.apply_async(f, (x,)), lambda r: r.get(60),
                  lambda p, f, xs, c: p.map(f, xs, chunksize=c), lambda p: p.terminate()),
        Contender("mpi4py.futures", futures_make, lambda p, f, x: p.submit(f, x), lambda r: r.result(60),
                  lambda p, f, xs, c: list(p.map(f, xs, chunksize=c)), lambda p: p.shutdown()),
    ]


def rate(c, pool, fn, n: int) -> float:
    for r in [c.submit(pool, fn, i) for i in range(min(50, n))]:  # warm-up
        c.result(r)
    t0 = time.perf_counter()
    for r in [c.submit(pool, fn, i) for i in range(n)]:
        c.result(r)
    return n / (time.perf_counter() - t0)


def map_rate(c, pool, n: int, chunksize: int) -> float:
    items = list(range(n))
    t0 = time.perf_counter()
    assert c.mapper(pool, noop, items, chunksize) == items
    return n / (time.perf_counter() - t0)


METRICS = ("apply no-op /s", "apply 1 ms /s", "map c=1 items/s", "map c=n/4w items/s", "first result s")
THROUGHPUT = (0, 2)  # the no-op throughput figures the target is about


def measure(c, workers: int, sizes: tuple) -> tuple:
    n_noop, n_ms, n_map1, n_map = sizes
    t0 = time.perf_counter()
    pool = c.make(workers)
    c.result(c.submit(pool, noop, 0))
    first = time.perf_counter() - t0
    try:
        noop_rate = rate(c, pool, noop, n_noop)
        ms_rate = rate(c, pool, one_ms, n_ms)
        map1 = map_rate(c, pool, n_map1, 1)
        mapc = map_rate(c, pool, n_map, math.ceil(n_map / (4 * workers)))
    finally:
        c.close(pool)
    return noop_rate, ms_rate, map1, mapc, first


def cell(values: list, fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    sizes = (500, 100, 500, 2000) if args.quick else (3000, 400, 3000, 10000)
    runs: dict = {}  # (workers, name) -> list of metric tuples
    for rep in range(args.repeat):
        for workers in (1, 2, 4):
            for c in contenders():
                m = measure(c, workers, sizes)
                runs.setdefault((workers, c.name), []).append(m)
                print(f"run {rep + 1} {workers} {c.name:15s} " + "  ".join(
                    f"{name} {v:,.2f}" if name.startswith("first") else f"{name} {v:,.0f}"
                    for name, v in zip(METRICS, m)), flush=True)
    names = [c.name for c in contenders()]
    lines = [f"Median over {args.repeat} run(s), (min-max) in brackets; higher is better except `first result`.", "",
             "| workers | contender | " + " | ".join(METRICS) + " |", "|---" * (2 + len(METRICS)) + "|"]
    for w in (1, 2, 4):
        for name in names:
            cols = list(zip(*runs[(w, name)]))
            lines.append(f"| {w} | {name} | " + " | ".join(
                cell(list(col), ".2f" if i == 4 else ",.0f") for i, col in enumerate(cols)) + " |")
    lines += ["", "Ratios mpigroup / other, per run (median, min-max); above 1 is better for mpigroup "
              "(for first result, the inverse ratio of times):", "",
              "| workers | vs | " + " | ".join(METRICS) + " |", "|---" * (2 + len(METRICS)) + "|"]
    verdicts = []
    for w in (1, 2, 4):
        ours = runs[(w, "mpigroup")]
        for other in names[1:]:
            theirs = runs[(w, other)]
            ratios = [[(o[i] / t[i]) if i != 4 else (t[i] / o[i]) for o, t in zip(ours, theirs)]
                      for i in range(len(METRICS))]
            lines.append(f"| {w} | {other} | " + " | ".join(cell(r, ".2f") + "x" for r in ratios) + " |")
            for i in THROUGHPUT:
                verdicts.append((w, other, METRICS[i], statistics.median(ratios[i]), min(ratios[i])))
    lines += ["", "Target: no-op throughput (apply and map with chunksize 1) at least that of mp.Pool and of "
              "mpi4py.futures at equal worker counts."]
    for w, other, metric, med, low in verdicts:
        verdict = "met" if low >= 1 else ("met in the median, not in every run" if med >= 1 else "NOT met")
        lines.append(f"- {w} workers, {metric}, vs {other}: {med:.2f}x median, {low:.2f}x lowest ({verdict})")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
