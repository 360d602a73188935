"""Lets `python -m deepfake_detector.benchmarks` run the harness."""
import sys

from deepfake_detector.benchmarks.cli import main

sys.exit(main())
