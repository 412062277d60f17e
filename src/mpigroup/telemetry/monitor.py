"""Node samplers and the per-node monitor process.

Level 2 samples the host with psutil (1-minute load average, CPU percent,
CPU count, memory used/total). Level 3 adds every GPU a vendor sampler can
see: NVIDIA through py3nvml (NVML). A node without NVIDIA GPUs or without
the NVML library reports no GPU series and says so once; it never fails.
AMD (rocm-smi) or Intel samplers fit behind :class:`GPUSampler`.

The monitor (:func:`run_monitor`) runs as one process per node, spawned by
the head's telemetry service; it puts one list of samples per interval on the
telemetry queue until the stop event is set.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Optional, Protocol

from ..errors import GPUUnavailable
from ..runtime.nodeinfo import node_name
from .naming import Sample

log = logging.getLogger(__name__)

__all__ = ["HostSampler", "GPUSampler", "NvidiaSampler", "GPUUnavailable", "open_gpu_samplers", "sample_once",
           "run_monitor"]


class GPUSampler(Protocol):
    """Reads one vendor's GPUs; ``sample`` returns ``(ts, node, metric, value, {"device": index})`` tuples."""

    vendor: str

    def sample(self, node: str, ts: float) -> list[Sample]: ...

    def close(self) -> None: ...


class HostSampler:
    """Host metrics through psutil (level 2)."""

    def __init__(self) -> None:
        import psutil  # third-party (the telemetry extra): only in monitor processes

        self._psutil = psutil
        psutil.cpu_percent(None)  # the first call only starts the measurement interval
        self._ncpu = float(psutil.cpu_count() or 0)
        self._total = float(psutil.virtual_memory().total)

    def sample(self, node: str, ts: float) -> list[Sample]:
        mem = self._psutil.virtual_memory()
        return [
            (ts, node, "system_load_average", os.getloadavg()[0], {}),
            (ts, node, "cpu_percent", self._psutil.cpu_percent(None), {}),
            (ts, node, "cpu_count", self._ncpu, {}),
            (ts, node, "memory_used", float(mem.total - mem.available), {}),
            (ts, node, "memory_total", self._total, {}),
        ]


class NvidiaSampler:
    """NVIDIA GPUs through py3nvml; raises :class:`GPUUnavailable` when there are none to read."""

    vendor = "nvidia"

    def __init__(self) -> None:
        try:
            from py3nvml import py3nvml as nvml  # third-party, level 3 only
        except ImportError as exc:
            raise GPUUnavailable(f"py3nvml is not installed ({exc})") from None
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
            raise GPUUnavailable(f"NVML could not start: {exc}") from None
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            nvml.nvmlShutdown()
            raise GPUUnavailable(f"NVML could not count devices: {exc}") from None
        if count == 0:
            nvml.nvmlShutdown()
            raise GPUUnavailable("NVML sees no NVIDIA GPU")
        self._nvml = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def sample(self, node: str, ts: float) -> list[Sample]:
        out = []
        for index, handle in enumerate(self._handles):
            tags = {"device": str(index)}
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # a device in error (e.g. fell off the bus): skip it this round
                continue
            out += [
                (ts, node, "gpu_utilization", float(util.gpu), tags),
                (ts, node, "gpu_memory_utilization", float(util.memory), tags),
                (ts, node, "gpu_memory_used", float(mem.used), tags),
                (ts, node, "gpu_memory_free", float(mem.free), tags),
                (ts, node, "gpu_memory_total", float(mem.total), tags),
            ]
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass


#: vendor samplers tried at level 3, in order
GPU_SAMPLERS: list[Callable[[], Any]] = [NvidiaSampler]


def open_gpu_samplers(node: str, report: Callable[[str], None] = log.warning) -> list:
    """Every GPU sampler that works on this node; ``report`` is told once why the others give no series."""
    samplers, reasons = [], []
    for factory in GPU_SAMPLERS:
        try:
            samplers.append(factory())
        except GPUUnavailable as exc:
            reasons.append(f"{getattr(factory, 'vendor', factory.__name__)}: {exc}")
    if not samplers:
        report(f"telemetry: node {node}: no GPU metrics ({'; '.join(reasons)})")
    return samplers


def sample_once(node: str, level: int, samplers: list) -> list[Sample]:
    """One round of samples at ``level`` from host and GPU samplers."""
    ts = time.time()
    out: list[Sample] = []
    for sampler in samplers:
        if level >= 3 or isinstance(sampler, HostSampler):
            out += sampler.sample(node, ts)
    return out


def run_monitor(queue: Any, stop: Any, level: int, interval: float, node: Optional[str] = None) -> None:
    """Body of the monitor process on each node: sample every ``interval`` s until ``stop`` is set."""
    if not node:
        node = node_name()
    samplers: list = [HostSampler()]
    if level >= 3:
        samplers += open_gpu_samplers(node)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            samples = sample_once(node, level, samplers)
            if samples:
                queue.put(samples)
            next_at += interval
            while True:  # sleep in short slices so a stop is seen within 0.2 s
                left = next_at - time.monotonic()
                if left <= 0 or stop.is_set():
                    break
                time.sleep(min(0.2, left))
            if time.monotonic() - next_at > interval:  # fell behind (suspended?): do not burst
                next_at = time.monotonic()
    finally:
        for sampler in samplers[1:]:
            sampler.close()
