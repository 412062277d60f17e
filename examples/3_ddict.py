"""A Pool fills a DDict from every node, the main program reads it all back:
the port of Dragon's distributed dictionary example.

Run:

    python -m mpigroup examples/3_ddict.py              # laptop (singleton)
    mpigroup run examples/3_ddict.py --keys 1000000     # inside Slurm/PBS: managers and workers on every node

1. A DDict with ``--managers-per-node`` manager ranks on every node of the
   allocation, sharing ``--mem`` bytes.
2. A Pool with one worker per usable CPU of the allocation writes
   ``--keys`` keys in batches (``put_many``); every value records the host
   and process that wrote it, plus a small numpy array.
3. The main program reads every key back (``get_many``), checks every value,
   and prints who wrote how much, each manager's statistics and the keys
   held on this node.
"""
import argparse
import os
import socket
import time
from collections import Counter

import numpy as np

from mpigroup import DDict, Pool


def fill(args: tuple) -> tuple:
    """Write keys [start, stop) in batches; returns (host, pid, count)."""
    d, start, stop = args
    host, pid = socket.gethostname(), os.getpid()
    for lo in range(start, stop, 1000):
        hi = min(stop, lo + 1000)
        d.put_many({f"key-{i}": (host, pid, np.full(4, i, dtype=np.int64)) for i in range(lo, hi)})
    return host, pid, stop - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000, help="how many keys the pool writes")
    parser.add_argument("--managers-per-node", type=int, default=1)
    parser.add_argument("--mem", type=int, default=512 << 20, help="total DDict memory in bytes")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: every usable CPU)")
    args = parser.parse_args()
    if args.keys < 1:
        parser.error("--keys must be at least 1")

    with DDict(managers_per_node=args.managers_per_node, total_mem=args.mem, timeout=300) as d:
        print(f"DDict with {d.managers} managers on {len({s['host'] for s in d.stats})} node(s)")
        t = time.perf_counter()
        with Pool(args.workers) as pool:
            step = -(-args.keys // (4 * pool._processes))
            spans = [(d, lo, min(args.keys, lo + step)) for lo in range(0, args.keys, step)]
            writers = pool.map(fill, spans, chunksize=1)
        wrote = time.perf_counter() - t
        print(f"pool wrote {args.keys} keys in {wrote:.2f} s ({args.keys / wrote:,.0f} keys/s)")

        t = time.perf_counter()
        names = [f"key-{i}" for i in range(args.keys)]
        by_host: Counter = Counter()
        for lo in range(0, args.keys, 5000):
            for i, (host, pid, arr) in zip(range(lo, lo + 5000), d.get_many(names[lo:lo + 5000])):
                assert arr[0] == i and arr.shape == (4,), (i, arr)
                by_host[host] += 1
        read = time.perf_counter() - t
        print(f"main read {args.keys} keys back in {read:.2f} s ({args.keys / read:,.0f} keys/s); all correct")
        per_writer = Counter()
        for host, pid, n in writers:
            per_writer[(host, pid)] += n
        print(f"{len(per_writer)} pool workers wrote: "
              + ", ".join(f"{host}/{pid}: {n}" for (host, pid), n in sorted(per_writer.items())))
        print("keys by writing host:", dict(by_host))
        for s in d.stats:
            print(f"  manager {s['manager']} on {s['host']} (pid {s['pid']}): {s['keys']} keys, "
                  f"{s['bytes_used'] / 1e6:.1f} of {s['bytes_budget'] / 1e6:.1f} MB")
        print(f"keys held on this node ({socket.gethostname()}): {len(d.local_keys())}")
        assert len(d) == args.keys


if __name__ == "__main__":
    main()
