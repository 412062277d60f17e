"""Shared objects across hosts against raw mpi4py between the same hosts (issue 13).

Builds a 2-host namespace cluster (tests/cluster/minicluster.py: real TCP
between network namespaces; root, Linux) and runs, interleaved, ``--repeats``
rounds of:

* ``raw``: ``mpiexec --host h1:1,h2:1 -n 2 python bench_cross_host.py --raw``:
  mpi4py ``send``/``recv`` 8 B round trips and a 16 MiB ``Send``/``Recv``
  stream between h1 and h2 (blocking calls, as an mpi4py user writes them);
* ``futures``: ``mpiexec -n 5 python -m mpi4py.futures`` with 4 workers split
  over h1 and h2: no-op ``submit`` round trips through ``MPIPoolExecutor``;
* ``mpigroup``: ``mpiexec -n 2 python -m mpigroup bench_cross_host.py --objects``:
  the head on h1 and a worker on h2; Queue 8 B round trip, a 16 MiB stream
  h1 -> h2, Event set-to-wake round trips, and a Pool of 4 workers split
  over both hosts running no-op ``apply_async``.

Run::

    .venv/bin/python benchmarks/bench_cross_host.py [--repeats 3] [--markdown out.md]

Reports medians over the rounds and the ratios of the issue's table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_RT = 500
STREAM_BYTES = 16 << 20
STREAM_COUNT = 8
POOL_TASKS = 2000


# ------------------------------------------------------------------ inside the cluster
def raw_main() -> None:
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    msg = b"x" * 8
    for _ in range(50):  # warm the connection
        if rank == 0:
            comm.send(msg, 1)
            comm.recv(source=1)
        else:
            comm.send(comm.recv(source=0), 0)
    t0 = time.perf_counter()
    for _ in range(N_RT):
        if rank == 0:
            comm.send(msg, 1)
            comm.recv(source=1)
        else:
            comm.send(comm.recv(source=0), 0)
    rt = (time.perf_counter() - t0) / N_RT
    buf = np.ones(STREAM_BYTES, np.uint8)
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(STREAM_COUNT):
        if rank == 0:
            comm.Send(buf, 1)
        else:
            comm.Recv(buf, 0)
    if rank == 1:
        comm.send(b"done", 0)
    else:
        comm.recv(source=1)
    bw = STREAM_BYTES * STREAM_COUNT / (time.perf_counter() - t0)
    if rank == 0:
        print("RESULT " + json.dumps({"raw_rt_us": rt * 1e6, "raw_bw_mbs": bw / 1e6}), flush=True)


def noop(x=None):
    return x


def futures_main() -> None:
    from mpi4py.futures import MPIPoolExecutor

    with MPIPoolExecutor() as ex:
        for _ in range(50):
            ex.submit(noop).result()
        t0 = time.perf_counter()
        futs = [ex.submit(noop, i) for i in range(POOL_TASKS)]
        for f in futs:
            f.result()
        per = (time.perf_counter() - t0) / POOL_TASKS
    print("RESULT " + json.dumps({"futures_task_us": per * 1e6}), flush=True)


def _echo(q_in, q_out, n):
    for _ in range(n):
        q_out.put(q_in.get())


def _drain(q, done, n):
    for _ in range(n):
        q.get()
    done.put(True)


def _events(e1, e2, n):
    for _ in range(n):
        assert e1.wait(60)
        e1.clear()
        e2.set()


def objects_main() -> None:
    import numpy as np

    import mpigroup
    from mpigroup import Node, Policy, Pool, Process, System

    names = [Node(n).hostname for n in System().nodes]
    other = Policy(host_name=names[1])
    res = {}
    a, b = mpigroup.Queue(), mpigroup.Queue()
    p = Process(target=_echo, args=(a, b, N_RT + 50), policy=other)
    p.start()
    for _ in range(50):
        a.put(b"x" * 8)
        b.get()
    t0 = time.perf_counter()
    for _ in range(N_RT):
        a.put(b"x" * 8)
        b.get()
    res["queue_rt_us"] = (time.perf_counter() - t0) / N_RT * 1e6
    p.join()

    q, done = mpigroup.Queue(), mpigroup.Queue()
    p = Process(target=_drain, args=(q, done, STREAM_COUNT), policy=other)
    p.start()
    arr = np.ones(STREAM_BYTES, np.uint8)
    t0 = time.perf_counter()
    for _ in range(STREAM_COUNT):
        q.put(arr)
    done.get()
    res["queue_bw_mbs"] = STREAM_BYTES * STREAM_COUNT / (time.perf_counter() - t0) / 1e6
    p.join()

    e1, e2 = mpigroup.Event(), mpigroup.Event()
    n_ev = N_RT // 5
    p = Process(target=_events, args=(e1, e2, n_ev), policy=other)
    p.start()
    t0 = time.perf_counter()
    for _ in range(n_ev):
        e1.set()
        assert e2.wait(60)
        e2.clear()
    res["event_rt_us"] = (time.perf_counter() - t0) / n_ev * 1e6
    p.join()

    with Pool(4, policy=[Policy(host_name=h) for h in names for _ in range(2)]) as pool:
        pool.map(noop, range(200))
        t0 = time.perf_counter()
        results = [pool.apply_async(noop, (i,)) for i in range(POOL_TASKS)]
        for r in results:
            r.get(120)
        res["pool_task_us"] = (time.perf_counter() - t0) / POOL_TASKS * 1e6
    print("RESULT " + json.dumps(res), flush=True)


# ------------------------------------------------------------------ driver
def _result(proc: subprocess.CompletedProcess) -> dict:
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def driver(args) -> int:
    sys.path.insert(0, str(REPO / "tests" / "cluster"))
    from minicluster import Cluster

    from mpigroup.base.mpienv import apply_defaults, mpiexec_path

    env = dict(os.environ)
    apply_defaults(env, local=False)
    mpiexec = mpiexec_path(env)
    py = sys.executable
    me = str(Path(__file__).resolve())
    rows: dict[str, list[float]] = {}
    with Cluster(2) as cluster:
        env.update(cluster.mpi_env())
        hosts = cluster.host_spec()
        runs = {
            "raw": [mpiexec, "--host", hosts, "-n", "2", py, me, "--raw"],
            "futures": [mpiexec, "--host", "h1:3,h2:2", "-n", "5", py, "-m", "mpi4py.futures", me, "--futures"],
            "mpigroup": [mpiexec, "--host", hosts, "-n", "2", py, "-m", "mpigroup", me, "--objects"],
        }
        for rnd in range(args.repeats):
            for name, argv in runs.items():
                proc = cluster.run("h1", argv, cwd=str(REPO), env=env, capture_output=True, timeout=600)
                for key, value in _result(proc).items():
                    rows.setdefault(key, []).append(value)
                print(f"round {rnd + 1} {name}: ok", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    table = [
        ("Queue 8 B round trip, h1 <-> h2", f"{med['queue_rt_us']:.0f} us", f"raw mpi4py {med['raw_rt_us']:.0f} us",
         f"{med['queue_rt_us'] / med['raw_rt_us']:.1f}x raw", "at most 2x"),
        ("Queue 16 MiB throughput, h1 -> h2", f"{med['queue_bw_mbs']:.0f} MB/s", f"raw mpi4py {med['raw_bw_mbs']:.0f} MB/s",
         f"{med['queue_bw_mbs'] / med['raw_bw_mbs']:.0%} of raw", "at least 50%"),
        # one ping-pong of two events is two set-to-wake latencies
        ("Event set-to-wake, h1 <-> h2 (half an event ping-pong)", f"{med['event_rt_us'] / 2:.0f} us",
         f"raw mpi4py round trip {med['raw_rt_us']:.0f} us", f"{med['event_rt_us'] / 2 / med['raw_rt_us']:.1f}x raw",
         "at most 2x"),
        ("Pool no-op apply_async, 4 workers over 2 hosts", f"{med['pool_task_us']:.0f} us/task",
         f"MPIPoolExecutor {med['futures_task_us']:.0f} us/task",
         f"{med['futures_task_us'] / med['pool_task_us']:.1f}x faster", "at least 4x"),
    ]
    lines = [f"Medians of {args.repeats} interleaved rounds; each: {N_RT} round trips, "
             f"{STREAM_COUNT} x 16 MiB, {POOL_TASKS} tasks.", "",
             "| Measure | mpigroup | Baseline | Ratio | Target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table]
    lines += ["", "Per round: " + json.dumps({k: [round(x, 1) for x in v] for k, v in rows.items()})]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--markdown")
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--futures", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--objects", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw:
        raw_main()
    elif args.futures:
        futures_main()
    elif args.objects:
        objects_main()
    else:
        return driver(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
