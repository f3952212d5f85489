"""What the machine offers: CPU features, free memory (device, cgroup) and usable cores.

Kept apart from the model code so that tile sizing, precision choice and benchmarks read the hardware in one
place, and tests can replace these probes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none), read once."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 inference pays off."""
    return any(f in cpu_flags() for f in ("avx512_bf16", "amx_bf16"))


def available_memory(device: torch.device) -> int:
    """Free bytes on `device`: CUDA from the driver (mem_get_info), CPU from MemAvailable in /proc/meminfo
    (psutil when /proc is missing), further limited by a cgroup memory limit when there is one."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    avail = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    if avail is None:
        try:
            import psutil
        except ImportError as e:
            raise RuntimeError("cannot read available memory: no /proc/meminfo and psutil missing; "
                               "pass an explicit tile size (--tile N)") from e  # fmt: skip
        avail = int(psutil.virtual_memory().available)
    for path, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            limit, used = Path(path).read_text().strip(), Path(usage).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < 2**60:
            avail = min(avail, max(0, int(limit) - int(used)))
        break
    return avail


def default_threads() -> int:
    """CPU cores this process may use (sched_getaffinity), for benchmarks and the ONNX Runtime session."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
