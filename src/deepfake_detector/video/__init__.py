"""Video input: streamed decoding with caps (decoding.py) and from frame scores to one verdict (verdict.py). The
serving runtime and `predict` use both; the evaluate stage aggregates frame scores with verdict.py's rules, so the
video-level numbers it reports (and the rule the model card records) are those of the served aggregation."""
