"""ProcessGroup with placement policies: per node, and per CPU/GPU.

Port of Dragon's ProcessGroup example. Run:

    python -m mpigroup examples/1_process_group.py            # laptop (singleton)
    mpigroup run examples/1_process_group.py                    # inside Slurm/PBS: one agent per node

Three groups run one after another:
  1. one process per node (System().hostname_policies()),
  2. one process per CPU of the first node, each pinned with cpu_affinity,
  3. one process per GPU of the allocation (System().gpu_policies()), each
     seeing only its own GPU; skipped with a message when there are no GPUs.
"""
import os
import socket

from mpigroup import Node, Policy, ProcessGroup, ProcessTemplate, System


def report(kind: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES") or os.environ.get("ROCR_VISIBLE_DEVICES") \
        or os.environ.get("ZE_AFFINITY_MASK") or "-"
    print(f"{kind:6s} puid {os.environ['MPIGROUP_PUID']:>3s} on {socket.gethostname()} cpus={cpus} gpus={gpus}")


def run_group(name: str, policies: list[Policy], kind: str) -> None:
    with ProcessGroup(name=name) as group:
        for policy in policies:
            group.add_process(1, ProcessTemplate(report, args=(kind,), policy=policy))
        group.start()
        group.join(timeout=120)
        codes = [code for _, code in group.exit_status]
    print(f"-- {name}: {len(codes)} processes, exit codes {codes}")


def main() -> None:
    system = System()
    print(f"allocation: {system.nnodes} node(s): {[Node(n).hostname for n in system.nodes]}")
    run_group("per-node", system.hostname_policies(), "node")

    first = Node(system.nodes[0])
    run_group("per-cpu", [Policy(host_name=first.hostname, cpu_affinity=[c]) for c in first.cpus], "cpu")

    gpu_policies = system.gpu_policies()
    if gpu_policies:
        run_group("per-gpu", gpu_policies, "gpu")
    else:
        print("-- per-gpu: no GPUs in this allocation, nothing to place")


if __name__ == "__main__":
    main()
