"""Evaluation: metrics, bootstrap, calibration, plots, robustness, cross-dataset, shortcut audit, report."""
