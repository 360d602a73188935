"""A full-page PNG of the HTML evaluation report, taken by a real headless Chromium.

Usage: deepfake-detector screenshot artifacts/report/index.html artifacts/report/screenshot.png
(or python -m deepfake_detector.report_screenshot with the same arguments)
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.utils.commands import run_module_command
from deepfake_detector.utils.files import atomic_path

logger = logging.getLogger(__name__)

PAGE_LOAD_TIMEOUT_S = 30
INSTALL_HINT = "Debian: apt-get install chromium chromium-driver; pip install selenium"
DESCRIPTION = ("Save a full-page PNG of the HTML evaluation report (the report stage's index.html), taken by a real "
               "headless Chromium, so every section is in one image. Needs Chromium, chromedriver and Selenium "
               f"({INSTALL_HINT}).")


class BrowserUnavailableError(DeepfakeDetectorError):
    """Chromium, chromedriver or Selenium is not installed, so no screenshot can be taken."""


def find_browser() -> tuple[str, str]:
    """Paths of the Chromium binary and its chromedriver; raises BrowserUnavailableError naming
    whichever is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if path is None]
    if missing:
        raise BrowserUnavailableError(f"{' and '.join(missing)} not found on PATH ({INSTALL_HINT})")
    return chromium, chromedriver


def start_headless_chromium(width: int, height: int, extra_arguments: tuple[str, ...] = ()):
    """A Selenium driver for a headless Chromium window of width x height, with Selenium Manager kept
    offline (the browser and driver must already be installed). The caller quits it."""
    chromium, chromedriver = find_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        raise BrowserUnavailableError(f"selenium is not installed ({INSTALL_HINT})") from error

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--disable-gpu", "--no-first-run", "--disable-extensions", *extra_arguments):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    return driver


def screenshot_report(html_file: Path, png_file: Path, width: int = 1280) -> Path:
    """Open html_file as a file:// page and save the whole page, not just the first screen, to png_file.

    The window is resized to the document's height so that one screenshot holds every section.
    Selenium Manager is kept offline: the browser and driver must already be installed.
    """
    html_file = Path(html_file).resolve()
    if not html_file.is_file():
        raise FileNotFoundError(f"{html_file}: no report to screenshot")
    driver = start_headless_chromium(width, 1000, extra_arguments=("--hide-scrollbars",))
    try:
        driver.get(html_file.as_uri())
        height = _fit_window_to_page(driver, width)
        with atomic_path(png_file) as tmp:
            if not driver.save_screenshot(str(tmp)):
                raise RuntimeError(f"Chromium could not screenshot {html_file}")
    finally:
        driver.quit()
    logger.info("Saved a %dx%d screenshot of %s to %s", width, height, html_file, png_file)
    return Path(png_file)


def _fit_window_to_page(driver, width: int) -> int:
    """Resize the window so its viewport is width wide and as tall as the document; returns that height.

    Headless Chromium's window is taller than its viewport (by its hidden toolbars), so the difference
    is measured and added rather than assumed; a second pass catches a layout that reflowed.
    """
    height = 0
    for _ in range(3):
        inner_width, inner_height, outer_width, outer_height, height = driver.execute_script(
            "return [window.innerWidth, window.innerHeight, window.outerWidth, window.outerHeight, "
            "Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)]")
        if inner_width == width and inner_height == height:
            break
        driver.set_window_size(width + outer_width - inner_width, height + outer_height - inner_height)
    return int(height)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("html_file", type=Path, metavar="HTML_FILE",
                        help="the report, e.g. artifacts/report/index.html")
    parser.add_argument("png_file", type=Path, metavar="PNG_FILE", help="where to write the PNG")
    parser.add_argument("--width", type=int, default=1280, metavar="PIXELS",
                        help="browser width in pixels (default: 1280)")


def run(args: argparse.Namespace) -> int:
    """0 when the PNG is written; 2 when there is no report or no browser to take it with."""
    from deepfake_detector.logging_config import configure_logging

    configure_logging(log_dir=None)
    try:
        screenshot_report(args.html_file, args.png_file, width=args.width)
    except (BrowserUnavailableError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module_command("python -m deepfake_detector.report_screenshot", DESCRIPTION, add_arguments, run,
                              argv, root_help=None)


if __name__ == "__main__":
    sys.exit(main())
