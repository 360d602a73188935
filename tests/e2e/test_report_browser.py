"""The HTML evaluation report in a real headless Chromium: opened from file:// with no network, every
section shows, every image decodes, nothing is fetched, and a full-page screenshot holds it all."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from deepfake_detector.components.evaluation.report import write_report
from deepfake_detector.components.evaluation.report_sections import SECTIONS
from deepfake_detector.report_screenshot import screenshot_report, start_headless_chromium
from tests.e2e.chromium import needs_chromium
from tests.unit.test_report import (
    FULL_REPORT_IMAGES,
    inputs,  # noqa: F401 (the report's generated inputs, as a fixture)
)

pytestmark = needs_chromium

WIDTH = 1100


@pytest.fixture
def report(inputs, tmp_path) -> Path:  # noqa: F811 (pytest fixture injection)
    return write_report(inputs, tmp_path / "report" / "index.html")


@pytest.fixture
def browser():
    driver = start_headless_chromium(WIDTH, 900)
    yield driver
    driver.quit()


def test_every_section_is_displayed_with_height_and_every_image_decodes(browser, report):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    for section_id, _ in SECTIONS:
        section = browser.find_element(By.ID, section_id)
        assert section.is_displayed(), section_id
        assert section.rect["height"] > 20, section_id
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == FULL_REPORT_IMAGES
    decoded = browser.execute_script(
        "return Array.from(document.images).map(image => image.complete && image.naturalWidth > 0)")
    assert all(decoded)
    thumbnails = browser.find_elements(By.CSS_SELECTOR, "#errors img")
    assert thumbnails and all(0 < image.rect["width"] <= 112 for image in thumbnails)


def test_the_page_fetches_nothing_and_flags_a_cue_in_color(browser, report):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
        ".filter(name => !name.startsWith('data:'))")
    assert fetched == []
    flagged = browser.find_element(By.CSS_SELECTOR, "#shortcut-audit tr.flagged td")
    plain = browser.find_element(By.CSS_SELECTOR, "#shortcut-audit tbody tr:not(.flagged) td")
    assert flagged.value_of_css_property("background-color") != plain.value_of_css_property("background-color")


def test_the_nav_jumps_to_a_section(browser, report):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    browser.find_element(By.CSS_SELECTOR, 'nav a[href="#params"]').click()
    assert browser.current_url.endswith("#params")
    assert browser.execute_script("return window.scrollY") > 0


def test_full_page_screenshot_holds_the_whole_report(browser, report, tmp_path):
    browser.get(report.as_uri())
    assert browser.execute_script("return window.innerWidth") == WIDTH
    page_height = browser.execute_script("return document.documentElement.scrollHeight")
    png = screenshot_report(report, tmp_path / "shots" / "screenshot.png", width=WIDTH)
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert (width, height) == (WIDTH, page_height)  # every section, down to the last params row
    assert height > 2000  # ten sections with figures: far more than one 900 px screen
    assert colors is None or len(colors) > 50
    if directory := os.environ.get("SCREENSHOT_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(directory) / "report.png")


def test_screenshot_of_a_missing_report_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.html"):
        screenshot_report(tmp_path / "absent.html", tmp_path / "shot.png")
