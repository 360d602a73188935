"""The ablation: a grid of params overrides, each row run as a DVC experiment, summarized in docs.

`deepfake-detector ablation run` runs the rows of config/ablation.yaml and records each under
artifacts/ablation/; `deepfake-detector ablation table` writes their table into docs/generalization.md.
"""
