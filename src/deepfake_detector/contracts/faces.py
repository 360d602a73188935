"""The face options every consumer names the same way: the server's settings, the `predict` command and the
crop function (inference/face_crop.py).

- detectors: off, blazeface (MediaPipe's short-range model: faces filling much of the picture) or
  blazeface_full_range (small and many faces);
- crops: native (a square around the face at the image's own resolution) or aligned (eyes levelled at a
  fixed scale, resampled).
"""
FACE_DETECTORS = ("off", "blazeface", "blazeface_full_range")
FACE_CROPS = ("native", "aligned")
