"""`deepfake-detector serve`: the production server, i.e. gunicorn with the repository's gunicorn.conf.py and app:app.

The command replaces this process with gunicorn (as `exec` would in a shell), so gunicorn's arbiter receives the
signals directly and everything gunicorn.conf.py and GUNICORN_CMD_ARGS say holds, exactly as in the container.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

GUNICORN_CONFIG = "gunicorn.conf.py"
WSGI_APP = "app:app"
EXIT_CANNOT_SERVE = 2

# Each option sets the environment variable gunicorn.conf.py reads, so that file stays the one place that turns
# them into gunicorn settings (bind, workers, threads, timeout) and its defaults hold for the options left out.
OPTIONS = (  # option, variable, help
    ("port", "PORT", "port to listen on, on all interfaces (default: $PORT or 8080)"),
    ("workers", "WEB_CONCURRENCY", "worker processes, each with its own model (default: $WEB_CONCURRENCY or 2)"),
    ("threads", "GUNICORN_THREADS", "threads per worker (default: $GUNICORN_THREADS or 8)"),
    ("timeout", "GUNICORN_TIMEOUT", "seconds before a silent worker is restarted (default: $GUNICORN_TIMEOUT or 120)"),
)

DESCRIPTION = ("Serve the web page and the JSON API with gunicorn, as the container does: gunicorn.conf.py from the "
               "root, app:app, each worker loading the model once. Options override the environment variables "
               "gunicorn.conf.py reads; DEEPFAKE_DETECTOR_* variables pick the model (docs/export-and-serving.md). "
               "For Flask's development server run `python app.py`.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option, _, meaning in OPTIONS:
        parser.add_argument(f"--{option}", type=positive_integer, metavar="N", help=meaning)


def run(args: argparse.Namespace) -> int:
    """Does not return when gunicorn starts; 2 when it cannot (no gunicorn, no gunicorn.conf.py or app.py)."""
    root = Path(args.root).resolve()
    problem = _missing_piece(root)
    if problem:
        print(f"deepfake-detector serve: error: {problem}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    command = gunicorn_command(root)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, server_environment(args, os.environ))


def gunicorn_command(root: Path) -> list[str]:
    """This interpreter's gunicorn, so the server runs in the same virtual environment as the command."""
    return [sys.executable, "-m", "gunicorn", "--config", str(root / GUNICORN_CONFIG), WSGI_APP]


def server_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """environ with the variable behind each option that was given set to its value."""
    chosen = {variable: str(getattr(args, option)) for option, variable, _ in OPTIONS
              if getattr(args, option) is not None}
    return {**environ, **chosen}


def _missing_piece(root: Path) -> str | None:
    if importlib.util.find_spec("gunicorn") is None:
        return "gunicorn is not installed in this environment (pip install -r requirements-serve.txt)"
    for name in (GUNICORN_CONFIG, "app.py"):
        if not (root / name).is_file():
            return f"no {name} in {root}: run from the repository root or pass --root"
    return None


def positive_integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
