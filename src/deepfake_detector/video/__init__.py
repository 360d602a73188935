"""Video input, apart from the pipeline: streamed decoding with caps (decoding.py) and from frame scores to one
verdict (verdict.py). The serving runtime and `predict` use it; no DVC stage imports it, so changing it never
invalidates a trained model."""
