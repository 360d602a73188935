"""A [0, 1] heatmap as a translucent PNG the web page lays over the photo: color from a
blue-to-red map, alpha growing with intensity so low-attention areas leave the photo visible."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

MAX_ALPHA = 0.6
# Anchor colors of a "jet"-like map at evenly spaced intensities.
_ANCHORS = np.array([[0, 0, 143], [0, 112, 255], [0, 255, 200], [255, 230, 0], [255, 64, 0], [128, 0, 0]],
                    dtype=np.float32)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4) RGBA for a float (H, W) heatmap; values outside [0, 1] and NaN are clipped."""
    values = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
    position = values * (len(_ANCHORS) - 1)
    lower = np.floor(position).astype(np.int64).clip(0, len(_ANCHORS) - 2)
    fraction = (position - lower)[..., None]
    rgb = _ANCHORS[lower] * (1.0 - fraction) + _ANCHORS[lower + 1] * fraction
    alpha = values[..., None] * (MAX_ALPHA * 255.0)
    return np.concatenate([rgb, alpha], axis=-1).round().clip(0, 255).astype(np.uint8)


def heatmap_png_data_url(heatmap: np.ndarray) -> str:
    """The colored heatmap as a data:image/png;base64 URL, at the heatmap's own size."""
    buffer = io.BytesIO()
    Image.fromarray(colorize(heatmap)).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
