"""The antialiased bilinear resize of TensorFlow (and of Pillow's BILINEAR filter), as two sparse matrix
products: each output row (column) is a weighted sum of at most a few input rows (columns), so the
weights form a banded matrix that scipy multiplies in one C call per axis for all three channels.

Pillow resamples one float plane per call; on a 300x300 photo that and the channel split and stack
cost about four times the two sparse products, for the same pixels (to float32 rounding).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import sparse

# The triangle filter's half-width, in output pixels (Pillow's bilinear_filter support).
_SUPPORT = 1.0
# Weights for inputs up to this side are kept for the next image of the same size (photos come in a few
# sizes); longer sides are rare and their weights large, so they are built afresh.
_CACHED_SIDE = 4096


def resampling_weights(in_size: int, out_size: int, start: float = 0.0, end: float | None = None
                       ) -> sparse.csr_matrix:
    """(out_size, in_size) float32 weights of the antialiased triangle filter over input [start, end), read-only.

    See _weights; cached when in_size is at most _CACHED_SIDE."""
    if in_size <= _CACHED_SIDE:
        return _cached_weights(in_size, out_size, start, end)
    return _weights(in_size, out_size, start, end)


@functools.lru_cache(maxsize=64)
def _cached_weights(in_size: int, out_size: int, start: float, end: float | None) -> sparse.csr_matrix:
    return _weights(in_size, out_size, start, end)


def _weights(in_size: int, out_size: int, start: float, end: float | None) -> sparse.csr_matrix:
    """(out_size, in_size) float32 weights of the antialiased triangle filter over input [start, end).

    Pillow's precompute_coeffs, vectorized: output pixel j is centred at start + (j + 0.5) * scale; the
    filter widens by the scale when shrinking (antialiasing), and each row's weights sum to one. The span
    (default the whole input) can be a fraction of a pixel short: a reduced JPEG decode's last pixel
    stands for less than a whole one of the original.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resampling needs positive sizes, got {in_size} -> {out_size}")
    # Pillow takes the box as float32; matching its rounding keeps the bounds the same.
    first_edge = np.float32(start)
    span = float(np.float32(in_size if end is None else end) - first_edge)
    scale = span / out_size
    filter_scale = max(scale, 1.0)
    support = _SUPPORT * filter_scale
    taps = 2 * math.ceil(support) + 1
    centers = float(first_edge) + (np.arange(out_size) + 0.5) * scale
    first = np.clip(np.trunc(centers - support + 0.5).astype(np.int64), 0, None)
    last = np.minimum(np.trunc(centers + support + 0.5).astype(np.int64), in_size)
    columns = first[:, None] + np.arange(taps)
    inside = columns < last[:, None]
    weights = np.clip(1.0 - np.abs((columns - centers[:, None] + 0.5) / filter_scale), 0.0, None) * inside
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals != 0)
    rows = np.broadcast_to(np.arange(out_size)[:, None], columns.shape)
    matrix = sparse.csr_matrix((weights[inside].astype(np.float32), (rows[inside], columns[inside])),
                               shape=(out_size, in_size))
    matrix.eliminate_zeros()
    return _read_only(matrix)


def _interleaved_weights(in_size: int, out_size: int, start: float, end: float | None,
                         channels: int) -> sparse.csr_matrix:
    """(in_size * C, out_size * C) weights that resize the rows of an image kept as (H, W * C), channels
    interleaved: multiplying from the right spares the transposes of a (H, W, C) array with C = 3,
    which numpy copies slowly. Cached as resampling_weights is."""
    if in_size <= _CACHED_SIDE:
        return _cached_interleaved_weights(in_size, out_size, start, end, channels)
    return _interleave(resampling_weights(in_size, out_size, start, end), channels)


@functools.lru_cache(maxsize=64)
def _cached_interleaved_weights(in_size: int, out_size: int, start: float, end: float | None,
                                channels: int) -> sparse.csr_matrix:
    return _interleave(resampling_weights(in_size, out_size, start, end), channels)


def _interleave(weights: sparse.csr_matrix, channels: int) -> sparse.csr_matrix:
    per_channel = sparse.identity(channels, dtype=np.float32, format="csr")
    return _read_only(sparse.kron(weights, per_channel, format="csr").T.tocsr())


def _read_only(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """The matrix with its arrays frozen: cached matrices are shared, and an edit would corrupt every later
    resize."""
    matrix.sort_indices()
    for array in (matrix.data, matrix.indices, matrix.indptr):
        array.flags.writeable = False
    return matrix


def resize_bilinear(pixels: np.ndarray, out_size: int,
                    box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """float32 (out_size, out_size, C) of an (H, W, C) image: the antialiased bilinear resize of the
    (left, top, right, bottom) `box` (all of the image when None, as in Pillow's resize), unclipped."""
    height, width, channels = pixels.shape
    left, top, right, bottom = (0.0, 0.0, None, None) if box is None else box
    vertical = resampling_weights(height, out_size, top, bottom)
    horizontal = _interleaved_weights(width, out_size, left, right, channels)
    rows = vertical @ pixels.reshape(height, width * channels).astype(np.float32, copy=False)
    return np.asarray(rows @ horizontal, dtype=np.float32).reshape(out_size, out_size, channels)
