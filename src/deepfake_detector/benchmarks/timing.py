"""Timing primitives shared by every section: repeat a call, summarize the samples in ms."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float | int]:
    """p50, p95, mean and min in milliseconds of samples given in seconds."""
    values = np.asarray(samples_s, dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "mean_ms": float(values.mean()),
        "min_ms": float(values.min()),
        "reps": int(values.size),
    }


def time_calls(call: Callable[[], object], reps: int, warmup: int = 0) -> list[float]:
    """Seconds taken by each of `reps` calls, after `warmup` untimed ones (tracing, caches, allocators)."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def time_interleaved(calls: Mapping[str, Callable[[], object]], reps: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds taken by each call in `reps` rounds that run every call once, in turn: a busy spell on a shared
    machine then slows every path alike instead of whichever was being timed, so their ratios hold."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return samples


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)
