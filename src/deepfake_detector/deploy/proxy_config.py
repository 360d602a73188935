"""The nginx configuration that puts a buffering reverse proxy in front of gunicorn, rendered from
deploy/nginx/nginx.conf.template for one place: the container's entry point, a test, or `make bench`.

    python -m deepfake_detector.deploy.proxy_config --listen 0.0.0.0:8080 --upstream 127.0.0.1:8000 --run-dir /tmp/nginx
    nginx -p /tmp/nginx -c /tmp/nginx/nginx.conf -e stderr -g 'daemon off;'

The body cap comes from serve.max_request_mb, so nginx refuses exactly what the app would.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.utils.commands import run_module_command
from deepfake_detector.utils.files import write_text_atomic

logger = logging.getLogger(__name__)

TEMPLATE = Path("deploy") / "nginx" / "nginx.conf.template"
CONFIG_NAME = "nginx.conf"
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
# Values go into nginx directives as single tokens: nothing that could end a directive or open a block.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/\[\]-]+")
DESCRIPTION = ("Write RUN_DIR/nginx.conf from deploy/nginx/nginx.conf.template: nginx listening on LISTEN and "
               "buffering whole requests for gunicorn on UPSTREAM, with serve.max_request_mb as its body cap.")


def render_proxy_config(template: str, *, listen: str, upstream: str, run_dir: Path, max_body_bytes: int,
                        error_log: str = "stderr", worker_user: str | None = None) -> str:
    """The template with every @NAME@ filled in, and a `user` directive when worker_user is given. Raises
    ConfigError for a value that is not a single nginx token or a placeholder the template has and this function
    does not know (or the reverse)."""
    values: Mapping[str, str] = {"LISTEN": listen, "UPSTREAM": upstream, "RUN_DIR": str(run_dir),
                                 "MAX_BODY": str(int(max_body_bytes)), "ERROR_LOG": error_log}
    for name, value in {**values, "worker user": worker_user or "-"}.items():
        if not SAFE_VALUE.fullmatch(value):
            raise ConfigError(f"nginx config: {name}={value!r} must be one word of letters, digits and ._:/[]-")
    used = set(PLACEHOLDER.findall(template))
    if used != set(values):
        raise ConfigError(f"nginx config template: placeholders {sorted(used)} differ from {sorted(values)}")
    text = PLACEHOLDER.sub(lambda found: values[found.group(1)], template)
    return f"user {worker_user};\n{text}" if worker_user else text


def write_proxy_config(root: Path, run_dir: Path, *, listen: str, upstream: str, max_body_bytes: int,
                       error_log: str = "stderr") -> Path:
    """run_dir/nginx.conf rendered from root's template; run_dir is created. Returns the file."""
    template = (root / TEMPLATE).read_text(encoding="utf-8")
    run_dir.mkdir(parents=True, exist_ok=True)
    text = render_proxy_config(template, listen=listen, upstream=upstream, run_dir=run_dir.resolve(),
                               max_body_bytes=max_body_bytes, error_log=error_log, worker_user=_root_user())
    return write_text_atomic(run_dir / CONFIG_NAME, text)


def _root_user() -> str | None:
    """nginx started by root hands its workers to `nobody`, who may not reach run_dir (a test's private temporary
    folder); so for root the workers stay root's. For any other user nginx runs as that user alone (the
    container's 10001), and a `user` directive would only draw a warning."""
    return getpass.getuser() if os.geteuid() == 0 else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", required=True, metavar="ADDRESS:PORT", help="where nginx listens")
    parser.add_argument("--upstream", required=True, metavar="ADDRESS:PORT", help="where gunicorn listens")
    parser.add_argument("--run-dir", required=True, type=Path, metavar="DIR",
                        help="writable folder for nginx.conf, the pid file and request-body buffers")
    parser.add_argument("--error-log", default="stderr", metavar="FILE", help="nginx's error log (default: stderr)")


def run(args: argparse.Namespace) -> int:
    """0 when the file is written; 2 for a bad value or an unreadable config."""
    from deepfake_detector.serving.settings import load_serving_config

    root = args.root.resolve()
    try:
        max_body = load_serving_config(root).max_request_bytes
        written = write_proxy_config(root, args.run_dir, listen=args.listen, upstream=args.upstream,
                                     max_body_bytes=max_body, error_log=args.error_log)
    except (ConfigError, OSError) as error:
        print(f"proxy_config: error: {error}", file=sys.stderr)
        return 2
    logger.info("wrote %s (body cap %d bytes)", written, max_body)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.deploy.proxy_config", DESCRIPTION, add_arguments, run,
                              argv)


if __name__ == "__main__":
    sys.exit(main())
