"""The one place that runs a stage: logging set-up, banner, timing, MLflow wiring, exit code.

Stage modules only say what their stage does; they never repeat this boilerplate.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.config import ConfigurationManager
from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.logging_config import configure_logging
from deepfake_detector.tracking import ExperimentTracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageContext:
    """What a stage needs besides its own component: the config and the experiment tracker."""

    config: ConfigurationManager
    tracker: ExperimentTracker

    def params(self, *sections: str) -> dict[str, Any]:
        """params.yaml sections as plain values, {section: {key: value}}, for MLflow params and tags
        (every section when none is named)."""
        values = self.config.params_as_written()
        return {name: values[name] for name in sections or values}


StageFunction = Callable[[StageContext], None]


def execute_stage(name: str, work: StageFunction, root: Path | None = None,
                  config: ConfigurationManager | None = None) -> None:
    """Run one stage in this process; errors propagate to the caller."""
    config = config or ConfigurationManager(root=root)
    tracker = ExperimentTracker(config.get_tracking_config(), config.root)
    logger.info(">>>>> stage %s started <<<<<", name)
    started = time.perf_counter()
    work(StageContext(config=config, tracker=tracker))
    logger.info(">>>>> stage %s completed in %.1f s <<<<<", name, time.perf_counter() - started)


def run_stages(stages: list[tuple[str, StageFunction]], root: Path | None = None) -> int:
    """Entry point for the command line and `python -m`: returns a process exit code.

    Errors the user can fix are logged as one clear message; anything else with a traceback.
    """
    root = root or Path.cwd()
    try:
        config = ConfigurationManager(root=root)
    except DeepfakeDetectorError as error:
        configure_logging(root / "logs")
        logger.error("invalid configuration:\n%s", error)
        return 2
    configure_logging(config.logs_dir)
    for name, work in stages:
        try:
            execute_stage(name, work, config=config)
        except DeepfakeDetectorError as error:
            logger.error("stage %s failed: %s", name, error)
            return 1
        except KeyboardInterrupt:
            logger.error("stage %s interrupted", name)
            return 130
        except Exception:
            logger.exception("stage %s failed with an unexpected error", name)
            return 1
    return 0


def stage_main(name: str, work: StageFunction) -> None:
    """`python -m deepfake_detector.pipeline.<stage>` lands here."""
    sys.exit(run_stages([(name, work)]))
