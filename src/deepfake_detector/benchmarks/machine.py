"""What the numbers were measured on: CPU, cores, vector extensions, library versions, commit."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from deepfake_detector.utils.cpus import usable_cores

CPUINFO = Path("/proc/cpuinfo")
PROC_STAT = Path("/proc/stat")
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avxvnni", "amx_tile")
# Distribution names to try for each library: the first one installed is reported.
DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "keras": ("keras",),
    "ai-edge-litert": ("ai-edge-litert",),
    "numpy": ("numpy",),
    "pillow": ("pillow",),
}


def cpu_count() -> int:
    """Cores this process may run on (a container's CPU set and CPU quota, not the host's core count)."""
    return usable_cores()


def machine_busy_seconds(path: Path = PROC_STAT) -> float | None:
    """CPU seconds the whole machine has spent busy (all processes, plus time stolen by the
    hypervisor) since boot; None where /proc/stat is absent."""
    try:
        fields = path.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    busy_ticks = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8) if i < len(fields))
    return busy_ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of the children it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class ContentionMeter:
    """How much of the machine's CPU other processes took while a benchmark ran.

    Benchmarks on a shared box are only comparable when nothing else runs; this measures
    rather than assumes it, so a report can say which numbers were taken under contention.
    """

    def __init__(self) -> None:
        self.start_wall = time.perf_counter()
        self.start_busy = machine_busy_seconds()
        self.start_own = own_cpu_seconds()

    def others_fraction(self) -> float | None:
        """Share of all cores' time since construction spent on other processes (0 = quiet)."""
        busy = machine_busy_seconds()
        wall = time.perf_counter() - self.start_wall
        if busy is None or self.start_busy is None or wall <= 0:
            return None
        others = (busy - self.start_busy) - (own_cpu_seconds() - self.start_own)
        return max(0.0, others / (wall * cpu_count()))


def read_cpuinfo(path: Path = CPUINFO) -> dict:
    """Model name, clock in MHz (None if not reported) and flags of the first processor."""
    info: dict = {"model_name": platform.processor() or platform.machine(), "mhz": None, "flags": set()}
    if not path.is_file():
        return info
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            if info["flags"]:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["model_name"] = value
        elif key == "cpu MHz":
            info["mhz"] = float(value)
        elif key == "flags":
            info["flags"] = set(value.split())
    return info


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, candidates in DISTRIBUTIONS.items():
        versions[name] = None
        for candidate in candidates:
            try:
                versions[name] = metadata.version(candidate)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def git_commit(root: Path) -> str | None:
    """HEAD's commit in root, or None outside a git checkout (read-only: no index refresh)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def machine_info(root: Path) -> dict:
    cpu = read_cpuinfo()
    return {
        "cpu_model": cpu["model_name"],
        "cores": cpu_count(),
        "cpu_mhz": cpu["mhz"],
        "flags": {flag: flag in cpu["flags"] for flag in FLAGS_OF_INTEREST},
        "platform": platform.platform(),
        "versions": library_versions(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(root),
    }
