"""Pool benchmark: mpigroup.Pool vs multiprocessing.Pool vs mpi4py.futures.MPIPoolExecutor, side by side.

Run on the mpigroup runtime (the head runs this script)::

    python -m mpigroup benchmarks/bench_pool.py [--quick] [--markdown out.md]

Measured for each contender with 1, 2 and 4 workers (one contender alive at
a time): tasks per second for no-op tasks and for 1 ms tasks submitted one
by one (``apply_async``/``submit``, chunk size 1), ``map`` over 10,000
items (default chunking), and the time from creating the pool to its first
result. mpi4py.futures workers are spawned ranks (``MPIPoolExecutor``).
"""
from __future__ import annotations

import argparse
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
                  lambda r: r.get(60), lambda p, f, xs: p.map(f, xs), lambda p: p.terminate()),
        Contender("mp.Pool", mp_make, lambda p, f, x: p.apply_async(f, (x,)), lambda r: r.get(60),
                  lambda p, f, xs: p.map(f, xs), lambda p: p.terminate()),
        Contender("mpi4py.futures", futures_make, lambda p, f, x: p.submit(f, x), lambda r: r.result(60),
                  lambda p, f, xs: list(p.map(f, xs, chunksize=max(1, len(xs) // (4 * 4)))),
                  lambda p: p.shutdown()),
    ]


def rate(c, pool, fn, n: int) -> float:
    for r in [c.submit(pool, fn, i) for i in range(min(50, n))]:  # warm-up
        c.result(r)
    t0 = time.perf_counter()
    for r in [c.submit(pool, fn, i) for i in range(n)]:
        c.result(r)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    n_noop, n_ms, n_map = (500, 100, 2000) if args.quick else (3000, 400, 10000)
    rows = []
    for workers in (1, 2, 4):
        for c in contenders():
            t0 = time.perf_counter()
            pool = c.make(workers)
            c.result(c.submit(pool, noop, 0))
            first = time.perf_counter() - t0
            noop_rate = rate(c, pool, noop, n_noop)
            ms_rate = rate(c, pool, one_ms, n_ms)
            t0 = time.perf_counter()
            assert c.mapper(pool, noop, list(range(n_map))) == list(range(n_map))
            map_time = time.perf_counter() - t0
            c.close(pool)
            rows.append((workers, c.name, noop_rate, ms_rate, map_time, first))
            print(f"{workers} {c.name:15s} noop {noop_rate:9.0f}/s  1ms {ms_rate:7.0f}/s  "
                  f"map {map_time * 1e3:7.1f} ms  first {first:5.2f} s", flush=True)
    lines = ["| workers | contender | no-op tasks/s | 1 ms tasks/s | map 10k items | create to first result |",
             "|---|---|---|---|---|---|"]
    for w, name, a, b, m, f in rows:
        lines.append(f"| {w} | {name} | {a:,.0f} | {b:,.0f} | {m * 1e3:.0f} ms | {f:.2f} s |")
    lines += ["", "Ratios (mpigroup / other; above 1 is better for mpigroup, for map and first result the inverse of time):", ""]
    lines += ["| workers | vs | no-op tasks/s | 1 ms tasks/s | map 10k | first result |", "|---|---|---|---|---|---|"]
    by = {(w, n): (a, b, m, f) for w, n, a, b, m, f in rows}
    verdicts = []
    for w in (1, 2, 4):
        ours = by[(w, "mpigroup")]
        for other in ("mp.Pool", "mpi4py.futures"):
            o = by[(w, other)]
            lines.append(f"| {w} | {other} | {ours[0] / o[0]:.2f}x | {ours[1] / o[1]:.2f}x | "
                         f"{o[2] / ours[2]:.2f}x | {o[3] / ours[3]:.2f}x |")
            verdicts.append((w, other, ours[0] / o[0]))
    lines += ["", "Target: no-op throughput at least that of mp.Pool and of mpi4py.futures at equal worker counts."]
    for w, other, ratio in verdicts:
        lines.append(f"- {w} workers vs {other}: {ratio:.2f}x ({'met' if ratio >= 1 else 'NOT met'})")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
