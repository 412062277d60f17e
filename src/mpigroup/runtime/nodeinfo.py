"""Discover what the local node offers: CPUs, GPUs and vendor, memory.

Pure Python (no MPI) so it can run in the launcher, in `mpigroup info` and in
every initial rank at bootstrap. CPUs come from the cgroup/cpuset the job may
use, not from the calling process's own binding (mpiexec may have bound the
caller to a single core).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from typing import Optional

from ..base import config
from ..topology import NodeDesc


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's CPU list format, e.g. ``"0-3,8,10-11"``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return sorted(set(cpus))


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def usable_cpus() -> list[int]:
    """CPUs the job may use on this node (cgroup cpuset, else all online)."""
    for path in ("/sys/fs/cgroup/cpuset.cpus.effective", "/sys/fs/cgroup/cpuset/cpuset.cpus"):
        text = _read(path)
        if text and text.strip():
            return parse_cpu_list(text)
    text = _read("/sys/devices/system/cpu/online")
    if text and text.strip():
        return parse_cpu_list(text)
    return list(range(os.cpu_count() or 1))


def _pci_vendor_gpus(vendor_id: str) -> int:
    count = 0
    for card in sorted(glob.glob("/sys/class/drm/card[0-9]*")):
        if "-" in os.path.basename(card):  # connectors such as card0-HDMI-A-1
            continue
        vendor = _read(os.path.join(card, "device", "vendor"))
        klass = _read(os.path.join(card, "device", "class")) or ""
        # 0x03xxxx is a display controller; 0x0380 covers compute-only accelerators
        if vendor and vendor.strip().lower() == vendor_id and klass.strip().startswith("0x03"):
            count += 1
    return count


def parse_gpu_override(text: str) -> tuple[list[int], Optional[str]]:
    """Parse ``MPIGROUP_GPUS``: ``"nvidia:0,1,2,3"``, ``"amd:0-7"``, ``"intel:0-11"`` or ``"none"``."""
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return [], None
    vendor, sep, ids = text.partition(":")
    vendor = vendor.strip().lower()
    if not sep or vendor not in ("nvidia", "amd", "intel"):
        raise ValueError(f"MPIGROUP_GPUS={text!r}: expected VENDOR:IDS with VENDOR nvidia, amd or intel, "
                         "e.g. 'nvidia:0-3'")
    try:
        return parse_cpu_list(ids), vendor
    except ValueError:
        raise ValueError(f"MPIGROUP_GPUS={text!r}: bad id list {ids!r}") from None


def detect_gpus() -> tuple[list[int], Optional[str]]:
    """Return (gpu ids, vendor) for the physical GPUs of this node.

    ``MPIGROUP_GPUS`` overrides detection (containers that hide the driver's
    /proc entries, or nodes whose devices the site wants to restrict).
    """
    override = config.get("MPIGROUP_GPUS")
    if override is not None:
        return parse_gpu_override(override)
    nvidia = sorted(glob.glob("/proc/driver/nvidia/gpus/*"))
    if nvidia:
        return list(range(len(nvidia))), "nvidia"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
            n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
            if n:
                return list(range(n)), "nvidia"
        except (OSError, subprocess.SubprocessError):
            pass
    n = _pci_vendor_gpus("0x1002")
    if n:
        return list(range(n)), "amd"
    n = _pci_vendor_gpus("0x8086")
    if n and os.path.exists("/dev/dri") and glob.glob("/sys/class/drm/card*/device/tile*"):
        return list(range(n)), "intel"
    return [], None


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def node_name() -> str:
    """The name of this node as the MPI launcher knows it.

    Spawn ``host`` keys, host policies and telemetry tags must use the
    launcher's name, which is not always the hostname: a Slurm ``NodeName``
    can differ from its ``NodeHostname``, and two nodes may report one
    hostname. Order: ``MPIGROUP_NODE`` (set by the runtime in every process it
    starts), PRRTE's ``PMIX_HOSTNAME``, then ``gethostname()``.
    """
    return config.get("MPIGROUP_NODE") or os.environ.get("PMIX_HOSTNAME") or socket.gethostname()


def node_identity() -> str:
    """What tells this machine (or namespace host) from another with the same name.

    The boot id differs between machines; the network and PID namespaces
    differ between containers or namespace hosts on one machine.
    """
    parts = [_read("/proc/sys/kernel/random/boot_id") or ""]
    for ns in ("net", "pid", "uts"):
        try:
            parts.append(os.readlink(f"/proc/self/ns/{ns}"))
        except OSError:
            parts.append("")
    return "|".join(p.strip() for p in parts)


def local_node(host_id: int = 0) -> NodeDesc:
    """Describe the node this process runs on."""
    gpus, vendor = detect_gpus()
    return NodeDesc(
        host_id=host_id,
        hostname=node_name(),
        cpus=tuple(usable_cpus()),
        gpus=tuple(gpus),
        gpu_vendor=vendor,
        physical_mem=physical_memory(),
    )
