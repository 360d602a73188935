"""Lets `python -m deepfake_detector.results` write or check README's results tables."""
import sys

from deepfake_detector.results.cli import main

sys.exit(main())
