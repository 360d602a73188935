"""Errors of the benchmark harness that a user can act on."""
from deepfake_detector.contracts.errors import DeepfakeDetectorError


class BenchmarkError(DeepfakeDetectorError):
    """A benchmark cannot run as asked (a serving subprocess failed, a runtime broke its contract)."""


class MissingMarkersError(BenchmarkError):
    """The README lacks the `<!-- bench:start -->` / `<!-- bench:end -->` pair to write between."""
