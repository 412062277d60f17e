"""Distributed inference with a language model and node telemetry: the port of Dragon's LLM example.

    prompts --> [prompt Queue] --> Pool of inference workers --> [response Queue] --> response workers

* The head puts 105 prompts (15 prompts, 7 rounds) on a prompt Queue.
* A Pool of inference workers (one per GPU when there are GPUs, placed by
  ``System().gpu_policies()``; else ``--workers`` CPU workers) each load the
  model once, then take prompts from the queue until told to stop: a fast
  worker simply takes more, which is the load balancing.
* Each answer goes on a response Queue with the serving worker's id; a group
  of response workers prints them.
* Every answer records the user metric ``request_latency`` (seconds from the
  prompt being queued to its answer) and ``requests_served``, both tagged
  with the worker id, so the per-worker load balance is visible in the
  telemetry (``/metrics``, Grafana, ``mpigroup telemetry plot``).

Run (about 30 s on 2 cores):

    mpigroup run --telemetry-level 2 examples/llm_inference/llm_inference.py --workers 2

On a cluster with a real model (the weights must already be reachable, e.g.
in the Hugging Face cache on a shared filesystem; ``pip install transformers``):

    mpigroup run --telemetry-level 3 examples/llm_inference/llm_inference.py --hf-model meta-llama/Llama-3.2-1B-Instruct
"""
import argparse
import os
import socket
import sys
import time
from collections import Counter

from mpigroup import Pool, ProcessGroup, ProcessTemplate, Queue, System, Telemetry

PROMPTS = [
    "What is the capital of France?",
    "Explain MPI one-sided communication in one sentence.",
    "Write a haiku about supercomputers.",
    "What does a load balancer do?",
    "Name three prime numbers.",
    "Why is the sky blue?",
    "Summarise the plot of Hamlet.",
    "How do GPUs speed up deep learning?",
    "Translate 'good morning' into Spanish.",
    "What is a time series database?",
    "Give me a tip for writing clean Python.",
    "What is the boiling point of water at sea level?",
    "Describe a queue in computer science.",
    "Who wrote 'On the Origin of Species'?",
    "What is telemetry?",
]


def get_args(argv=None):
    parser = argparse.ArgumentParser(description="Distributed inference with telemetry")
    parser.add_argument("--workers", type=int, default=2,
                        help="inference workers when there are no GPUs (default: 2; with GPUs: one per GPU)")
    parser.add_argument("--response-workers", type=int, default=2, help="response workers (default: 2)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the 15 prompts (default: 7 -> 105 prompts)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tokens per answer (default: 48)")
    parser.add_argument("--hf-model", default="", help="a Hugging Face model name instead of the built-in tiny model")
    parser.add_argument("--no-cuda", action="store_true", help="ignore GPUs")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a worker waits for a prompt")
    args = parser.parse_args(argv)
    for flag in ("--workers", "--response-workers", "--rounds", "--max-new-tokens"):
        if getattr(args, flag[2:].replace("-", "_")) < 1:
            parser.error(f"{flag} must be at least 1")
    return args


def inference_worker(wid, prompt_q, response_q, args):
    """Load the model once, answer prompts until the stop marker (None); returns (wid, host, answered)."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from model import load_model

    torch.set_num_threads(1)
    model = load_model(args.hf_model, seed=0)
    telemetry = Telemetry()
    tags = {"worker": wid}
    served = 0
    while True:
        item = prompt_q.get(timeout=args.timeout)
        if item is None:
            return wid, socket.gethostname(), served
        pid, prompt, queued_at = item
        reply = model.generate(prompt, args.max_new_tokens, seed=pid)
        latency = time.time() - queued_at
        served += 1
        telemetry.add_data("request_latency", latency, tags=tags)
        telemetry.add_data("requests_served", served, tags=tags)
        response_q.put((pid, wid, prompt, reply, latency))


def response_worker(rid, response_q, timeout):
    """Print answers until the stop marker (None)."""
    while True:
        item = response_q.get(timeout=timeout)
        if item is None:
            return
        pid, wid, prompt, reply, latency = item
        print(f"response prompt={pid} worker={wid} latency={latency:.3f}s by responder {rid}: "
              f"{prompt!r} -> {reply!r}", flush=True)


def inference_pool(args, system):
    policies = [] if args.no_cuda else system.gpu_policies()
    if policies:
        return Pool(policy=policies, processes_per_policy=1), len(policies)
    return Pool(args.workers), args.workers


if __name__ == "__main__":
    args = get_args()
    system = System()
    prompt_q, response_q = Queue(), Queue()
    pool, nworkers = inference_pool(args, system)
    print(f"{system.nnodes} node(s), {nworkers} inference workers, {args.response_workers} response workers, "
          f"model: {args.hf_model or 'built-in tiny GRU'}", flush=True)

    responders = ProcessGroup(name="responders")
    responders.add_process(1, ProcessTemplate(response_worker, args=(0, response_q, args.timeout)))
    for rid in range(1, args.response_workers):
        responders.add_process(1, ProcessTemplate(response_worker, args=(rid, response_q, args.timeout)))
    responders.start()
    jobs = [pool.apply_async(inference_worker, (wid, prompt_q, response_q, args)) for wid in range(nworkers)]

    started = time.time()
    total = 0
    for round_no in range(args.rounds):
        for prompt in PROMPTS:
            prompt_q.put((total, prompt, time.time()))
            total += 1
        time.sleep(0.2)  # rounds arrive one after the other, as users would send them
    for _ in range(nworkers):
        prompt_q.put(None)
    served = [job.get(timeout=args.timeout) for job in jobs]
    for _ in range(args.response_workers):
        response_q.put(None)
    responders.join(timeout=args.timeout)
    responders.close()
    pool.close()
    pool.join()

    elapsed = time.time() - started
    for wid, host, count in sorted(served):
        print(f"inference worker {wid} on {host}: {count} prompts", flush=True)
    answered = sum(count for _, _, count in served)
    print(f"answered {answered} of {total} prompts in {elapsed:.1f} s "
          f"({answered / elapsed:.1f} prompts/s)", flush=True)
    Telemetry().add_data("prompts_per_second", answered / elapsed)
