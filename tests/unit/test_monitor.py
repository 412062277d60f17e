"""Node samplers without MPI: psutil for real, NVML through a stand-in module (no NVIDIA GPU here)."""
import sys
import types

import pytest

from mpigroup.telemetry import monitor, naming


def test_host_sampler_reports_the_documented_series():
    samples = monitor.HostSampler().sample("n1", 123.0)
    assert [m for _, _, m, _, _ in samples] == [m for m, _, _ in naming.HOST_METRICS]
    assert all(ts == 123.0 and node == "n1" and tags == {} for ts, node, _, _, tags in samples)
    values = {m: v for _, _, m, v, _ in samples}
    assert 0 < values["memory_used"] <= values["memory_total"] and values["cpu_count"] >= 1


def _fake_nvml(devices, init_error=None, broken=()):
    """A py3nvml stand-in with ``devices`` = [(gpu %, mem %, used, free, total)]."""
    nvml = types.SimpleNamespace(calls=[])

    def init():
        if init_error:
            raise init_error
    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: len(devices)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i

    def util(h):
        if h in broken:
            raise RuntimeError("GPU is lost")
        return types.SimpleNamespace(gpu=devices[h][0], memory=devices[h][1])
    nvml.nvmlDeviceGetUtilizationRates = util
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=devices[h][2], free=devices[h][3],
                                                                   total=devices[h][4])
    package = types.ModuleType("py3nvml")
    package.py3nvml = nvml
    return package, nvml


def test_nvidia_sampler_per_device_series(monkeypatch):
    package, nvml = _fake_nvml([(50, 20, 1, 3, 4), (75, 30, 2, 2, 4), (0, 0, 0, 4, 4)], broken=(2,))
    monkeypatch.setitem(sys.modules, "py3nvml", package)
    monkeypatch.setitem(sys.modules, "py3nvml.py3nvml", nvml)
    sampler = monitor.NvidiaSampler()
    samples = sampler.sample("n1", 1.0)
    assert {(m, tags["device"]) for _, _, m, _, tags in samples} == \
        {(m, d) for m, _, _ in naming.GPU_METRICS for d in ("0", "1")}  # device 2 in error: skipped
    assert {(m, v) for _, _, m, v, tags in samples if tags["device"] == "1"} == {
        ("gpu_utilization", 75.0), ("gpu_memory_utilization", 30.0), ("gpu_memory_used", 2.0),
        ("gpu_memory_free", 2.0), ("gpu_memory_total", 4.0)}
    sampler.close()
    assert nvml.calls == ["shutdown"]
    # level 3 takes GPU samples, level 2 does not
    assert len(monitor.sample_once("n1", 3, [sampler])) == 10
    assert monitor.sample_once("n1", 2, [sampler]) == []


@pytest.mark.parametrize("devices,error,why", [([], None, "sees no NVIDIA GPU"),
                                               ([(1, 1, 1, 1, 1)], OSError("NVML Shared Library Not Found"),
                                                "NVML could not start")])
def test_no_gpu_means_no_series_and_one_log_line(monkeypatch, devices, error, why):
    package, nvml = _fake_nvml(devices, init_error=error)
    monkeypatch.setitem(sys.modules, "py3nvml", package)
    monkeypatch.setitem(sys.modules, "py3nvml.py3nvml", nvml)
    logged = []
    assert monitor.open_gpu_samplers("n1", logged.append) == []
    assert len(logged) == 1 and "node n1: no GPU metrics" in logged[0] and why in logged[0]
