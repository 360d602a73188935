"""Logging set-up, done once by each entry point: console plus a rotating file under logs/."""
import logging
import logging.handlers
import os
from pathlib import Path

FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


def configure_logging(log_dir: str | Path | None = "logs", level: int | str | None = None) -> None:
    """Route every logger to the console and, when log_dir is given, to log_dir/pipeline.log."""
    level = level or os.environ.get("DEEPFAKE_DETECTOR_LOG_LEVEL", "INFO")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                Path(log_dir) / "pipeline.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"
            )
        )
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    for noisy in ("urllib3", "PIL", "matplotlib", "h5py", "absl", "git", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
