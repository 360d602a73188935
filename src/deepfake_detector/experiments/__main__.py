"""Lets `python -m deepfake_detector.experiments` run the ablation or write its table."""
import sys

from deepfake_detector.experiments.cli import main

sys.exit(main())
