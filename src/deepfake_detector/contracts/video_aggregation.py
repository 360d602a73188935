"""The rules that turn frame scores into a video's P(fake), named once for every consumer: evaluate (which picks
one on the validation videos), the model card (which records it), serving (serve.video_aggregation) and
video/verdict.py (which computes them).

- mean, median, max, or top_k_mean (the mean of the most fake quarter of the frames);
- a server may also be told auto: the rule the card records as chosen on validation videos, else DEFAULT.
"""
AGGREGATIONS = ("mean", "median", "max", "top_k_mean")
AUTO_AGGREGATION = "auto"
SERVED_AGGREGATIONS = (AUTO_AGGREGATION, *AGGREGATIONS)
# What auto serves when nothing chosen on validation videos speaks for the served model.
DEFAULT_AGGREGATION = "mean"
