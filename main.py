"""Run every pipeline stage in order without DVC, as `deepfake-detector run` does (DVC runs them one by one from
dvc.yaml)."""
import sys

from deepfake_detector.pipeline.runner import run_stages
from deepfake_detector.pipeline.stages import STAGES

if __name__ == "__main__":
    sys.exit(run_stages(list(STAGES.items())))
