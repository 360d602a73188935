"""How many CPUs this process may really use: its CPU affinity, capped by a cgroup CPU quota (a container's
`--cpus`), which `os.cpu_count()` ignores."""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The cores this process may run on, at most the cgroup quota rounded up (1.5 CPUs: 2), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota)) if quota is not None else cores)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time per period the cgroup allows (cgroup v2 cpu.max, else v1 cfs_quota_us), or None
    when there is no quota or no cgroup file to read."""
    limit = _read(cgroup_root / "cpu.max")
    if limit is not None:
        quota, _, period = limit.partition(" ")
        return _ratio(quota, period)
    for folder in ("cpu", "cpu,cpuacct"):
        quota = _read(cgroup_root / folder / "cpu.cfs_quota_us")
        if quota is not None:
            return _ratio(quota, _read(cgroup_root / folder / "cpu.cfs_period_us") or "")
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    """quota / period; None for "max" or -1 (no limit) and for anything unreadable."""
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
