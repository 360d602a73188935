"""Compute per image and the machine's peak, to say how close each runtime gets to the hardware.

FLOPs are counted analytically (2 per multiply-accumulate) for Conv2D, DepthwiseConv2D and
Dense, nested models included; normalization, activations and pooling are left out, as is
usual for these estimates (MobileNetV2 1.0 / 224 comes to about 0.6 GFLOP).
"""
from __future__ import annotations

import math
from collections.abc import Iterator

from deepfake_detector.benchmarks.machine import cpu_count, read_cpuinfo

FALLBACK_GHZ = 2.5
# fp32 FLOP per cycle per core: 2 FMA units x vector lanes x 2 (multiply and add).
FLOP_PER_CYCLE = {"avx512f": 2 * 16 * 2, "avx2+fma": 2 * 8 * 2, "sse": 2 * 4 * 2}


def iter_layers(model) -> Iterator:
    """Every leaf layer of a model, descending into nested models such as the backbone."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from iter_layers(layer)
        else:
            yield layer


def count_flops(model) -> int:
    """FLOPs for one image through the model's multiply-accumulate layers.

    For all three layer types the MACs per output position are the kernel's element count
    (a Conv2D kernel holds kh*kw*cin/groups*cout, a depthwise one kh*kw*cin*multiplier, a
    Dense one in*units), so MACs = output positions (spatial dims, not channels) x kernel size.
    """
    import keras

    counted = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    total = 0
    for layer in iter_layers(model):
        if not isinstance(layer, counted):
            continue
        positions = math.prod(int(d) for d in layer.output.shape[1:-1])
        total += 2 * positions * math.prod(int(d) for d in layer.kernel.shape)
    return total


def machine_peak(cores: int | None = None, cpu: dict | None = None) -> dict:
    """Theoretical fp32 peak from cores, clock and vector width, with the assumption spelled out."""
    cpu = cpu if cpu is not None else read_cpuinfo()
    cores = cores if cores is not None else cpu_count()
    flags = cpu.get("flags", set())
    if "avx512f" in flags:
        isa = "avx512f"
    elif "avx2" in flags and "fma" in flags:
        isa = "avx2+fma"
    else:
        isa = "sse"
    measured_clock = cpu.get("mhz") is not None
    ghz = cpu["mhz"] / 1000.0 if measured_clock else FALLBACK_GHZ
    flop_per_cycle = FLOP_PER_CYCLE[isa]
    peak = cores * ghz * flop_per_cycle
    clock_note = "the clock /proc/cpuinfo reports" if measured_clock else f"an assumed {FALLBACK_GHZ} GHz clock"
    assumption = (f"peak = {cores} cores x {ghz:.2f} GHz ({clock_note}) x {flop_per_cycle} fp32 FLOP/cycle "
                  f"({isa}: 2 FMA units x {flop_per_cycle // 4} lanes x 2) = {peak:.1f} GFLOP/s; turbo, "
                  "SMT and memory bandwidth ignored")
    return {"cores": cores, "ghz": ghz, "isa": isa, "flop_per_cycle": flop_per_cycle, "peak_gflops": peak,
            "clock_measured": measured_clock, "assumption": assumption}


def achieved(images_per_s: float | None, flops_per_image: int, peak_gflops: float) -> dict:
    """GFLOP/s and percent of peak at a given throughput (None when there is no throughput)."""
    if not images_per_s:
        return {"gflops": None, "percent_of_peak": None}
    gflops = images_per_s * flops_per_image / 1e9
    return {"gflops": gflops, "percent_of_peak": 100.0 * gflops / peak_gflops}
