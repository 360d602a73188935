"""The report stage's worker: one self-contained HTML file a person opens offline to judge the model.

The page is templates/report.html.j2 filled from report_sections' rows: CSS inline, every image a
data URI, no JavaScript, so the file makes no request of any kind.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import jinja2

from deepfake_detector.components.evaluation.report_inputs import ReportInputs, read_report_inputs
from deepfake_detector.components.evaluation.report_sections import report_context
from deepfake_detector.config.entities import ReportConfig
from deepfake_detector.utils.files import write_text_atomic

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "report.html.j2"


@dataclass(frozen=True)
class ReportResult:
    html_file: Path


class ReportBuilder:
    """Gathers scores, predictions, plots and the later stages' outputs, and writes the report.

    project_root is where git is asked for the commit shown in the header (the working folder if None).
    """

    def __init__(self, config: ReportConfig, project_root: Path | None = None) -> None:
        self.config = config
        self.project_root = Path(project_root) if project_root is not None else Path.cwd()

    def run(self) -> ReportResult:
        inputs = read_report_inputs(self.config, self.project_root)
        return ReportResult(html_file=write_report(inputs, self.config.html_file))


def render_report(inputs: ReportInputs) -> str:
    return _template().render(**report_context(inputs))


def write_report(inputs: ReportInputs, out_file: Path) -> Path:
    """Render inputs into out_file atomically: a failure keeps the previous report whole."""
    html = render_report(inputs)
    write_text_atomic(out_file, html)
    logger.info("Wrote the evaluation report to %s (%d KiB)", out_file, len(html.encode()) // 1024)
    return Path(out_file)


@functools.cache
def _template() -> jinja2.Template:
    # PackageLoader finds the template in the source tree and in an installed package alike.
    # Autoescape on: file names, cue descriptions and params are data, never markup.
    environment = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return environment.get_template(TEMPLATE_NAME)
