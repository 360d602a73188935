"""The face options every consumer names the same way: the server's settings, the `predict` command and the
crop function (inference/face_crop.py).

- detectors: off, blazeface (MediaPipe's short-range model: faces filling much of the picture) or
  blazeface_full_range (small and many faces);
- crops: native (a square around the face at the image's own resolution) or aligned (eyes levelled at a
  fixed scale, resampled);
- without a face (the faces stage, data.faces.no_face): quarantine the image (left out, listed with its reason)
  or keep it whole (scored as serving scores an upload without a face).
"""
FACE_DETECTORS = ("off", "blazeface", "blazeface_full_range")
# What a server may be told: "auto" crops faces as the served model was trained (its card's input.faces), or not.
SERVED_FACE_DETECTORS = ("auto", *FACE_DETECTORS)
FACE_CROPS = ("native", "aligned")
FACE_FALLBACKS = ("quarantine", "whole_image")
