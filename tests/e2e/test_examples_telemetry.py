"""The seed workloads as examples, small, under mpiexec with telemetry on (needs the examples extra)."""
import os
import re
import socket
from collections import Counter

from helpers import REPO, run_mpigroup, wait_no_processes

from mpigroup.telemetry.runstore import RunStore


def _run(tmp_path, script, *args, timeout=300):
    env = {"MPIGROUP_TELEMETRY_LEVEL": "2", "MPIGROUP_TELEMETRY_PORT": "0",
           "MPIGROUP_TELEMETRY_DIR": str(tmp_path / "runs"), "MPIGROUP_TELEMETRY_INTERVAL": "0.5"}
    tag = os.urandom(8).hex()
    proc = run_mpigroup(script, *args, np=2, timeout=timeout, env=env, tag=tag)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not wait_no_processes(tag)
    run_dir = re.search(r"data in (\S+)", proc.stderr).group(1)
    return proc, RunStore(run_dir)


def _every_node_sampled(run):
    nodes = {socket.gethostname()}  # the allocation of `mpiexec -n 2` on this machine
    assert set(run.nodes()) == nodes
    for metric in ("system_load_average", "cpu_percent", "memory_used"):
        assert {s.tags["node"] for s in run.query(metric) if s.points} == nodes, metric


def test_telemetry_full_small(tmp_path):
    proc, run = _run(tmp_path, REPO / "examples" / "telemetry_full.py",
                     "--scipy_workers", "1", "--mnist_workers", "2", "--size", "64", "--mem", "1048576",
                     "--epochs", "1", "--train-samples", "256", "--test-samples", "128", "--linger", "1")
    finals = re.findall(r"^Final test for learning rate (\S+): loss: (\S+) accuracy: (\S+)$", proc.stdout, re.M)
    assert sorted(lr for lr, _, _ in finals) == ["0.5", "1.5"]  # one line per learning rate
    for _, loss, accuracy in finals:
        assert float(loss) >= 0 and 0 <= float(accuracy) <= 100
    assert "Number of images: 256" in proc.stdout and "256 images convolved, 2 models trained" in proc.stdout
    assert re.search(r"^nodename: \S+ cpu load average 1 minute: [\d.]+ ", proc.stdout, re.M)
    assert "Post process is exiting" in proc.stdout and "exiting ..." in proc.stdout
    _every_node_sampled(run)
    assert {s.tags["lr"] for s in run.query("train_loss")} == {"0.5", "1.5"}
    assert {s.tags["lr"] for s in run.query("test_accuracy")} == {"0.5", "1.5"}
    assert sum(len(s.points) for s in run.query("convolution_seconds")) == 256


def test_llm_inference_every_prompt_answered_once(tmp_path):
    proc, run = _run(tmp_path, REPO / "examples" / "llm_inference" / "llm_inference.py",
                     "--workers", "2", "--response-workers", "2", "--max-new-tokens", "8")
    answered = Counter(int(pid) for pid in re.findall(r"^response prompt=(\d+) worker=\d+ ", proc.stdout, re.M))
    assert sorted(answered) == list(range(105)) and set(answered.values()) == {1}
    per_worker = dict(re.findall(r"^inference worker (\d+) on \S+: (\d+) prompts$", proc.stdout, re.M))
    assert sorted(per_worker) == ["0", "1"] and sum(map(int, per_worker.values())) == 105
    assert "answered 105 of 105 prompts" in proc.stdout
    _every_node_sampled(run)
    latency = run.query("request_latency")
    # the load balance is in the store: samples per worker = prompts that worker served (a worker
    # that a busy machine kept from its first prompt until the others had taken them all has no series)
    served = {w: int(n) for w, n in per_worker.items() if int(n)}
    assert {s.tags["worker"]: len(s.points) for s in latency} == served, per_worker
    assert all(v >= 0 for s in latency for _, v in s.points)
