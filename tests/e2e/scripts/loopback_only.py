"""Two workers pass messages to the head; each prints the TCP interfaces its MPI may use (issue 15, exposure)."""
import os

import mpigroup
from mpigroup import Queue


def worker(q):
    q.put((os.getpid(), os.environ.get("OMPI_MCA_btl_tcp_if_include")))


if __name__ == "__main__":
    q = Queue()
    procs = [mpigroup.Process(target=worker, args=(q,)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(120)
    print("HEAD", os.environ.get("OMPI_MCA_btl_tcp_if_include"))
    print("WORKERS", sorted(str(v) for _, v in got))
    print("EXITCODES", [p.exitcode for p in procs])
