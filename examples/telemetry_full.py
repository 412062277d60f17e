"""Multi-node process orchestration and node telemetry: the port of Dragon's ``telemetry_full.py``.

An ensemble of SciPy image convolutions and PyTorch training runs (one
learning rate per worker), watched by one telemetry process per node:

* a Pool of SciPy workers convolves images (generated in the workers from a
  seed, so the head never holds the ``--mem`` bytes);
* a Pool of torch workers trains a small CNN on synthetic MNIST-shaped data
  (10 classes, 28x28, no download), one learning rate each; with GPUs, each
  worker is placed on its own GPU by a policy (``System().gpu_policies()``);
* one telemetry process per node pushes its load average and GPU utilisation
  into a shared Queue every second;
* one post-processing process prints the readings, or draws tqdm bars (``--bars``);
* start and end Events bracket the monitoring.

It ends with ``Final test for learning rate LR: loss: L accuracy: A`` per
learning rate. Training and convolution also report user metrics
(``train_loss``, ``test_accuracy``, ``convolution_seconds``), which the
runtime's telemetry stores and serves when it is on.

Run (small, about a minute on 2 cores):

    mpigroup run --telemetry-level 2 examples/telemetry_full.py --scipy_workers 1 --mnist_workers 2 \
        --size 64 --mem 2097152 --epochs 1 --train-samples 512 --test-samples 256

Full size on a cluster (Dragon's defaults; one GPU per torch worker):

    mpigroup run --telemetry-level 3 examples/telemetry_full.py --bars --mnist_workers 4

Needs the ``examples`` extra (scipy, torch==2.13.0); py3nvml (``telemetry``
extra) for GPU readings.
"""
import argparse
import functools
import os
import queue
import socket
import time

import numpy as np

import mpigroup
from mpigroup import Event, Pool, ProcessGroup, ProcessTemplate, Queue, System, Telemetry


def get_args(argv=None):
    parser = argparse.ArgumentParser(description="SciPy and MNIST test with telemetry")
    parser.add_argument("--scipy_workers", type=int, default=2, help="number of scipy workers (default: 2)")
    parser.add_argument("--mnist_workers", type=int, default=2, help="number of mnist workers (default: 2)")
    parser.add_argument("--bars", action="store_true", default=False, help="uses tqdm bars to print telemetry info")
    parser.add_argument("--no-cuda", action="store_true", default=False, help="disables CUDA training")
    parser.add_argument("--size", type=int, default=1024, help="size of the array (default: 1024)")
    parser.add_argument("--mem", type=int, default=1024 * 1024 * 1024,
                        help="overall footprint of image dataset to process (default: 1024^3)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N",
                        help="input batch size for testing (default: 1000)")
    parser.add_argument("--epochs", type=int, default=14, metavar="N", help="number of epochs to train (default: 14)")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M", help="Learning rate step gamma (default: 0.7)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    # not in the seed: the synthetic data set replaces the MNIST download
    parser.add_argument("--train-samples", type=int, default=60000, help="synthetic training images (default: 60000)")
    parser.add_argument("--test-samples", type=int, default=10000, help="synthetic test images (default: 10000)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker (default: 1)")
    parser.add_argument("--linger", type=float, default=2.0,
                        help="seconds of monitoring after the work ends (seed: 10)")
    args = parser.parse_args(argv)
    for flag in ("--scipy_workers", "--mnist_workers", "--size", "--mem", "--epochs", "--train-samples",
                 "--test-samples", "--batch-size", "--test-batch-size", "--threads"):
        if getattr(args, flag[2:].replace("-", "_")) < 1:
            parser.error(f"{flag} must be at least 1")
    return args


# ------------------------------------------------------------ telemetry processes
def telem_work(q, start_ev, end_ev):
    """One per node: push (node, load average, GPU utilisations) into the shared queue every second."""
    from mpigroup.telemetry.monitor import open_gpu_samplers

    node = socket.gethostname()
    print(f"This is a telemetry process on node {node}.", flush=True)
    gpus = open_gpu_samplers(node, lambda msg: print(msg, flush=True))
    while not start_ev.is_set():
        time.sleep(0.1)
    while not end_ev.is_set():
        readings = {}
        for sampler in gpus:
            for _ts, _node, metric, value, tags in sampler.sample(node, time.time()):
                if metric == "gpu_utilization":
                    readings[tags["device"]] = value
        q.put({"node": node, "load": os.getloadavg()[0], "cpus": os.cpu_count(), "gpus": readings})
        for _ in range(10):
            if end_ev.is_set():
                break
            time.sleep(0.1)
    for sampler in gpus:
        sampler.close()
    print(f"Telemetry process on node {node} exiting ...", flush=True)


def post_process(q, start_ev, end_ev, tqdm_bars):
    """The single post-processing process: print each reading, or keep one tqdm bar per node and GPU."""
    print(f"This is the postprocessing process, {socket.gethostname()}.", flush=True)
    while not start_ev.is_set():
        time.sleep(0.1)
    bars = None
    if tqdm_bars:
        import sys

        from mpigroup.telemetry.top import Bars

        bars = Bars(sys.stdout)
    while True:
        try:
            reading = q.get(timeout=1.0)
        except queue.Empty:
            if end_ev.is_set():
                break
            continue
        if bars is not None:
            bars.update({reading["node"]: reading})
        else:
            gpus = " ".join(f"device # {d} utilization: {u:.2f}%" for d, u in sorted(reading["gpus"].items()))
            print(f"nodename: {reading['node']} cpu load average 1 minute: {reading['load']:.2f} "
                  f"{gpus or 'no GPUs'}", flush=True)
    if bars is not None:
        bars.close()
    print("Post process is exiting", flush=True)


# ------------------------------------------------------------ SciPy convolutions
def init_data(args):
    """One (index, size, seed) per image: the images themselves are made by the workers."""
    count = max(1, args.mem // (args.size * args.size))
    print(f"Number of images: {count}", flush=True)
    return [(i, args.size, args.seed * 1_000_003 + i) for i in range(count)]


def conv_f(item):
    """Convolve one image with a 5x5 blur and a 3x3 edge filter; return its index and response energy."""
    import scipy.signal

    index, size, seed = item
    started = time.perf_counter()
    image = np.random.default_rng(seed).random((size, size), dtype=np.float32)
    blur = np.full((5, 5), 1 / 25, dtype=np.float32)
    edges = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float32)
    out = scipy.signal.convolve2d(scipy.signal.convolve2d(image, blur, mode="same"), edges, mode="same")
    Telemetry().add_data("convolution_seconds", time.perf_counter() - started)
    return index, float(np.square(out).mean())


# ------------------------------------------------------------ torch training
def synthetic_mnist(n, seed):
    """MNIST-shaped data (n x 1 x 28 x 28, labels 0-9): a fixed smooth template per class plus noise."""
    import torch

    templates = torch.nn.functional.avg_pool2d(
        torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(1234)), 5, stride=1, padding=2)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = 3 * templates[labels] + torch.randn(n, 1, 28, 28, generator=gen)
    return (images - images.mean()) / images.std(), labels


def build_net():
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):  # the PyTorch MNIST example's network
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = self.dropout1(x).flatten(1)
            x = self.dropout2(F.relu(self.fc1(x)))
            return F.log_softmax(self.fc2(x), dim=1)

    return Net()


def mnist_lr_sweep(args, lr):
    """Train with learning rate ``lr``; returns (lr, test loss, test accuracy in %)."""
    import torch
    import torch.nn.functional as F
    from torch.optim.lr_scheduler import StepLR

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    use_cuda = not args.no_cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")  # the policy left this worker one visible GPU
    train_x, train_y = synthetic_mnist(args.train_samples, args.seed)
    test_x, test_y = synthetic_mnist(args.test_samples, args.seed + 1)
    model = build_net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    telemetry = Telemetry()
    tags = {"lr": f"{lr:g}"}
    test_loss, accuracy = float("nan"), 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(args.train_samples)
        for start in range(0, args.train_samples, args.batch_size):
            batch = order[start:start + args.batch_size]
            data, target = train_x[batch].to(device), train_y[batch].to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        telemetry.add_data("train_loss", loss.item(), tags=tags)
        model.eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, args.test_samples, args.test_batch_size):
                data = test_x[start:start + args.test_batch_size].to(device)
                target = test_y[start:start + args.test_batch_size].to(device)
                output = model(data)
                total += F.nll_loss(output, target, reduction="sum").item()
                correct += (output.argmax(dim=1) == target).sum().item()
        test_loss, accuracy = total / args.test_samples, 100.0 * correct / args.test_samples
        telemetry.add_data("test_accuracy", accuracy, tags=tags)
        scheduler.step()
    return lr, test_loss, accuracy


def mnist_pool(args, system):
    """One worker per learning rate; with GPUs (and no --no-cuda) each worker on its own GPU by policy."""
    gpu_policies = [] if args.no_cuda else system.gpu_policies()
    if gpu_policies:
        policies = [gpu_policies[i % len(gpu_policies)] for i in range(args.mnist_workers)]
        return Pool(policy=policies, processes_per_policy=1)
    return Pool(args.mnist_workers)


if __name__ == "__main__":
    args = get_args()
    print(f"Hello from main process {socket.gethostname()}.", flush=True)
    print("using mpigroup runtime", flush=True)
    system = System()
    print(f"Number of nodes: {system.nnodes}", flush=True)
    print(f"Number of scipy workers: {args.scipy_workers}", flush=True)
    print(f"Number of MNIST workers: {args.mnist_workers}", flush=True)

    q = Queue()  # readings of every node's telemetry process
    start_ev, end_ev = Event(), Event()

    post_proc = mpigroup.Process(post_process, args=(q, start_ev, end_ev, args.bars))
    post_proc.start()
    monitors = ProcessGroup(name="node-telemetry")
    for policy in system.hostname_policies():  # one telemetry process per node
        monitors.add_process(1, ProcessTemplate(telem_work, args=(q, start_ev, end_ev), policy=policy))
    monitors.start()

    scipy_data = init_data(args)
    scipy_pool = Pool(args.scipy_workers)
    n = args.mnist_workers
    lr_list = [1 / (n - 1) * i + 0.5 for i in range(n)] if n > 1 else [1.0]
    train = mnist_pool(args, system)

    start_ev.set()
    print("Launching scipy and mnist jobs", flush=True)
    started = time.monotonic()
    workers_mnist = train.map_async(functools.partial(mnist_lr_sweep, args), lr_list, chunksize=1)
    workers_scipy = scipy_pool.map_async(conv_f, scipy_data)
    mnist_results = workers_mnist.get(timeout=24 * 3600)
    scipy_results = workers_scipy.get(timeout=24 * 3600)
    for pool in (train, scipy_pool):
        pool.close()
        pool.join()
    print(f"Work done in {time.monotonic() - started:.1f} s: {len(scipy_results)} images convolved, "
          f"{len(mnist_results)} models trained", flush=True)

    time.sleep(args.linger)
    print("Shutting down procs", flush=True)
    end_ev.set()
    monitors.join(timeout=60)
    monitors.close()
    post_proc.join(timeout=60)

    for lr, loss, accuracy in mnist_results:
        print(f"Final test for learning rate {lr}: loss: {loss} accuracy: {accuracy}", flush=True)
