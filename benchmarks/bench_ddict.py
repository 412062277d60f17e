"""DDict against multiprocessing.Manager().dict() and a real Redis server, side by side.

Run (installs Debian's redis-server and redis-py first if they are missing):

    python -m mpigroup benchmarks/bench_ddict.py [--quick] [--markdown out.md]

Workload: 16-byte keys; values of 64 B, 4 KiB and 1 MiB; put and get
operations per second from 1 and 2 client processes (aggregate: all clients'
operations over the slowest client's time, clients started together by a
barrier); DDict with 1 and 2 managers; unbatched (one round trip per key) and
batched (DDict ``put_many``/``get_many``; Redis pipelines of SET and MGET;
Manager ``update`` for puts, no batched get exists). Then GB/s of single
1 MiB and 64 MiB values against a numpy memcpy of the same size in the same
run (into a reused array, and into a new array each time as a get must
return one). Redis runs on loopback with persistence off; its clients are redis-py.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import command_line, format_machine  # noqa: E402

SIZES = ((64, "64 B"), (4096, "4 KiB"), (1 << 20, "1 MiB"))
BATCH = {64: 256, 4096: 256, 1 << 20: 8}


# ------------------------------------------------------------ the clients
def _store(kind: str, handle):
    """(put, get, put_many, get_many) callables over one store."""
    if kind == "ddict":
        d = handle
        return d.__setitem__, d.__getitem__, d.put_many, d.get_many
    if kind == "manager":
        p = handle
        return p.__setitem__, p.__getitem__, p.update, None
    import redis

    r = redis.Redis(host="127.0.0.1", port=handle)

    def put_many(mapping):
        pipe = r.pipeline(transaction=False)
        for k, v in mapping.items():
            pipe.set(k, v)
        pipe.execute()

    return r.set, r.get, put_many, r.mget


def client(kind: str, handle, me: int, cases: list, barrier, results) -> None:
    """Run every case: barrier, timed put phase, barrier, timed get phase; report the times."""
    put, get, put_many, get_many = _store(kind, handle)
    out = []
    for size, batch, n, keyspace in cases:
        value = b"v" * size
        keys = [f"c{me}s{size:07d}k{i:06d}"[:16].ljust(16, "_") for i in range(keyspace)]
        for k in keys:  # every key exists before the timed phases
            put(k, value)
        times = []
        for phase in ("put", "get"):
            if phase == "get" and batch > 1 and get_many is None:
                times.append(None)
                continue
            barrier.wait()
            t0 = time.perf_counter()
            if batch == 1:
                fn = put if phase == "put" else get
                for i in range(n):
                    if phase == "put":
                        fn(keys[i % keyspace], value)
                    else:
                        fn(keys[i % keyspace])
            else:
                for start in range(0, n, batch):
                    chunk = [keys[(start + j) % keyspace] for j in range(batch)]
                    if phase == "put":
                        put_many({k: value for k in chunk})
                    else:
                        got = get_many(chunk)
                        assert len(got[0]) == size
            times.append(time.perf_counter() - t0)
        out.append(times)
    results.put((me, out))


def run_clients(kind: str, handle, nclients: int, cases: list) -> list[list]:
    """Per case, [put ops/s, get ops/s] aggregated over ``nclients`` client processes."""
    if kind == "ddict":
        import mpigroup

        barrier, results = mpigroup.Barrier(nclients), mpigroup.Queue()
        procs = [mpigroup.Process(client, args=(kind, handle, i, cases, barrier, results)) for i in range(nclients)]
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(nclients), ctx.Queue()
        procs = [ctx.Process(target=client, args=(kind, handle, i, cases, barrier, results))
                 for i in range(nclients)]
    for p in procs:
        p.start()
    per_client = [results.get(timeout=1800)[1] for _ in procs]
    for p in procs:
        p.join(60)
    rates = []
    for c, (size, batch, n, _) in enumerate(cases):
        row = []
        for phase in range(2):
            times = [pc[c][phase] for pc in per_client]
            row.append(None if times[0] is None else n * nclients / max(times))
        rates.append(row)
    return rates


# ------------------------------------------------------------ the servers
def start_redis() -> tuple[subprocess.Popen, int]:
    """Debian's redis-server on loopback (installed with apt-get if missing), persistence off."""
    if shutil.which("redis-server") is None:
        print("installing redis-server (apt-get)...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    try:
        import redis  # noqa: F401
    except ImportError:
        print("installing redis-py (pip)...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redis"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--protected-mode", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    r = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            r.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def memcpy_gbs(size: int, reps: int) -> float:
    src, dst = np.ones(size, np.uint8), np.empty(size, np.uint8)
    np.copyto(dst, src)
    t0 = time.perf_counter()
    for _ in range(reps):
        np.copyto(dst, src)
    return size * reps / (time.perf_counter() - t0) / 1e9


def copy_new_gbs(size: int, reps: int) -> float:
    """numpy copy into a new array each time (what a get has to return), GB/s."""
    src = np.ones(size, np.uint8)
    src.copy()
    t0 = time.perf_counter()
    for _ in range(reps):
        src.copy()
    return size * reps / (time.perf_counter() - t0) / 1e9


def bulk_gbs(kind: str, handle, size: int, reps: int) -> tuple[float, float]:
    """(put GB/s, get GB/s) of one ``size``-byte numpy value from this process."""
    value = np.full(size, 3, np.uint8)
    if kind == "redis":
        import redis

        r = redis.Redis(host="127.0.0.1", port=handle)
        put, get = (lambda: r.set("bulk", value.tobytes())), (lambda: r.get("bulk"))
    else:
        put, get = (lambda: handle.__setitem__("bulk", value)), (lambda: handle["bulk"])
    put()
    get()
    t0 = time.perf_counter()
    for _ in range(reps):
        put()
    t1 = time.perf_counter()
    for _ in range(reps):
        get()
    t2 = time.perf_counter()
    return size * reps / (t1 - t0) / 1e9, size * reps / (t2 - t1) / 1e9


def changed_get_gbs(handle, size: int, reps: int) -> float:
    """GB/s of gets that each follow a put of the same key (timed: the gets only), so
    no get can reuse what an earlier get learnt about where the value lies."""
    value = np.full(size, 5, np.uint8)
    total = 0.0
    for _ in range(reps):
        handle["bulk"] = value
        t0 = time.perf_counter()
        handle["bulk"]
        total += time.perf_counter() - t0
    return size * reps / total / 1e9


# ----------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer operations (smoke run)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    import multiprocessing

    from mpigroup import DDict

    def cases_for(batched: bool) -> list:
        cases = []
        for size, _ in SIZES:
            small = size < (1 << 20)
            n = int((60_000 if batched else 4_000) * scale) if small else int((256 if batched else 96) * scale)
            batch = BATCH[size] if batched else 1
            n = max(batch, n - n % batch)
            cases.append((size, batch, n, 1000 if small else 16))
        return cases

    redis_proc, redis_port = start_redis()
    manager = multiprocessing.get_context("spawn").Manager()
    results: dict = {}
    try:
        for batched in (False, True):
            cases = cases_for(batched)
            for nclients in (1, 2):
                for managers in (1, 2):
                    with DDict(managers_per_node=managers, total_mem=2 << 30, timeout=600) as d:
                        results[("ddict", managers, nclients, batched)] = run_clients("ddict", d, nclients, cases)
                proxy = manager.dict()
                results[("manager", 1, nclients, batched)] = run_clients("manager", proxy, nclients, cases)
                proxy.clear()
                results[("redis", 1, nclients, batched)] = run_clients("redis", redis_port, nclients, cases)
                print(f"done: batched={batched} clients={nclients}", flush=True)

        out("### Operations per second (16-byte keys; aggregate over the client processes)")
        out("")
        out("| value | batched | clients | op | DDict 1 mgr | DDict 2 mgr | Manager().dict() | Redis | "
            "DDict best / Manager | DDict best / Redis |")
        out("|---|---|---|---|---|---|---|---|---|---|")
        for batched in (False, True):
            for nclients in (1, 2):
                for c, (size, label) in enumerate(SIZES):
                    for phase, op in enumerate(("put", "get")):
                        d1 = results[("ddict", 1, nclients, batched)][c][phase]
                        d2 = results[("ddict", 2, nclients, batched)][c][phase]
                        mg = results[("manager", 1, nclients, batched)][c][phase]
                        rd = results[("redis", 1, nclients, batched)][c][phase]
                        best = max(d1, d2)
                        fmt = (lambda r: "n/a" if r is None else f"{r:,.0f}")
                        out(f"| {label} | {'yes' if batched else 'no'} | {nclients} | {op} | {fmt(d1)} | {fmt(d2)} | "
                            f"{fmt(mg)} | {fmt(rd)} | {'n/a' if mg is None else f'{best / mg:.2f}x'} | "
                            f"{best / rd:.2f}x |")

        out("")
        out("### Bulk values, one client, GB/s (DDict with 1 manager)")
        out("")
        out("Repeated gets read one unchanged value; 'get after a put' times gets that each follow a put")
        out("of the same key (the first read of a changed value).")
        out("")
        out("| value | memcpy | copy to a new array | DDict put | DDict get | get / memcpy | get / copy to new | "
            "get after a put | its / memcpy | Manager get | Redis get | DDict get / Manager | DDict get / Redis |")
        out("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for size, label, reps in ((1 << 20, "1 MiB", 200), (64 << 20, "64 MiB", 8)):
            reps = max(3, int(reps * scale))
            copy = memcpy_gbs(size, max(10, reps))
            fresh = copy_new_gbs(size, max(10, reps))
            with DDict(managers_per_node=1, total_mem=1 << 30, timeout=600) as d:
                dput, dget = bulk_gbs("ddict", d, size, reps)
                dchanged = changed_get_gbs(d, size, reps)
            proxy = manager.dict()
            _, mget = bulk_gbs("manager", proxy, size, max(3, reps // 4))
            proxy.clear()
            _, rget = bulk_gbs("redis", redis_port, size, max(3, reps // 4))
            out(f"| {label} | {copy:.2f} | {fresh:.2f} | {dput:.2f} | {dget:.2f} | {dget / copy:.0%} | "
                f"{dget / fresh:.0%} | {dchanged:.2f} | {dchanged / copy:.0%} | {mget:.2f} | {rget:.2f} | {dget / mget:.1f}x | {dget / rget:.1f}x |")
    finally:
        manager.shutdown()
        redis_proc.terminate()
        redis_proc.wait(10)

    out("")
    out(f"Command: `{command_line(prefix=['python', '-m', 'mpigroup'])}`")
    out("")
    for line in format_machine():
        out(f"- {line}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
