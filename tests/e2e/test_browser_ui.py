"""The upload page in a real headless Chromium against a real gunicorn: a photo is analyzed and the page
shows the API's own numbers with a heatmap; server errors, a missing model and the keyboard are handled; all
of it under the app's Content-Security-Policy, with no violation in the browser's console."""
from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deepfake_detector.report_screenshot import start_headless_chromium
from tests.e2e.chromium import needs_chromium
from tests.servers import Server, start_server
from tests.tiny_served_model import REPO_ROOT, TinyModel, tiny_model_for_session, write_photo

pytestmark = needs_chromium

WAIT_S = 30


def start_gunicorn(environment: dict[str, str], log_file: Path, expect_ready: bool = True) -> Server:
    """gunicorn app:app on a port of its own choosing, as deployed but with one worker."""
    command = [sys.executable, "-m", "gunicorn", "app:app", "--bind", "127.0.0.1:0", "--workers", "1",
               "--threads", "2", "--no-control-socket"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), **environment}
    server = start_server(command, log_file, env=env, cwd=REPO_ROOT)
    # Without a model the server never gets ready; it is enough that it answers.
    try:
        server.wait_for("/readyz" if expect_ready else "/healthz")
    except AssertionError:
        stop(server)
        raise
    return server


def stop(server: Server) -> None:
    # SIGINT is gunicorn's quick shutdown: SIGTERM would wait out the browser's keep-alive connections.
    server.stop(signal.SIGINT, timeout_s=10)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> TinyModel:
    return tiny_model_for_session(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory) -> Iterator[str]:
    # Face cropping on, so one server shows both a whole-image answer and face boxes.
    running = start_gunicorn({**tiny_model.environment(), "DEEPFAKE_DETECTOR_FACE_DETECTOR": "blazeface"},
                             tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield running.base_url
    stop(running)


@pytest.fixture(scope="module")
def server_without_model(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("no_model")
    running = start_gunicorn(
        {"DEEPFAKE_DETECTOR_MODEL": str(folder / "absent.h5"), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(folder)},
        folder / "gunicorn.log", expect_ready=False)
    yield running.base_url
    stop(running)


@pytest.fixture(scope="module")
def browser():
    driver = start_headless_chromium(1200, 1000)
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def no_policy_violations(browser):
    """Every test runs under the Content-Security-Policy: whatever it does, the console shows no violation."""
    console_messages(browser)  # what earlier tests left
    yield
    violations = policy_violations(console_messages(browser))
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    return write_photo(tmp_path_factory.mktemp("photos") / "face.jpg", seed=5)


def wait_for(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def element(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def console_messages(driver) -> list[dict]:
    """The console messages since the last call (reading empties the buffer). ChromeDriver keeps SEVERE ones
    by default: uncaught errors, failed loads and Content-Security-Policy violations (source "security")."""
    return driver.get_log("browser")


def policy_violations(messages: list[dict]) -> list[str]:
    return [entry["message"] for entry in messages
            if entry.get("source") == "security" or "Content Security Policy" in entry["message"]]


def analyze(driver, base_url: str, path: Path) -> None:
    """Open the page, choose path and analyze it; returns once the verdict is shown."""
    driver.get(base_url)
    element(driver, "file-input").send_keys(str(path))
    wait_for(driver, lambda driver: element(driver, "preview").get_attribute("data-state") == "ready")
    element(driver, "analyze-button").click()
    wait_for(driver, verdict_shown)


def verdict_shown(driver) -> bool:
    return element(driver, "verdict").text in ("Real", "Fake")


def error_shown(driver) -> bool:
    return element(driver, "error").is_displayed() and bool(element(driver, "error").text)


def api_answer(base_url: str, path: Path, content_type: str = "image/jpeg") -> requests.Response:
    with path.open("rb") as handle:
        return requests.post(f"{base_url}/api/v1/predict", params={"explain": "true"},
                             files={"file": (path.name, handle, content_type)}, timeout=WAIT_S)


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if directory := os.environ.get("SCREENSHOT_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(directory) / name)
    print(f"screenshot: {path}" + (f" and {Path(directory) / name}" if directory else ""))
    return path


def test_page_describes_the_loaded_model(browser, server):
    browser.get(server)
    info = element(browser, "model-info")
    assert info.get_attribute("data-loaded") == "true"
    version = requests.get(f"{server}/api/v1/model", timeout=WAIT_S).json()["model_version"]
    assert version in info.text
    assert not browser.find_elements("id", "model-missing")


def test_a_demo_trained_model_carries_a_visible_notice_and_its_training_data(browser, server):
    browser.get(server)
    notice = element(browser, "demo-notice")
    assert notice.is_displayed() and "verdicts on real photographs mean nothing" in notice.text
    model = requests.get(f"{server}/api/v1/model", timeout=WAIT_S).json()
    assert model["notice"] in notice.text
    assert element(browser, "training-data").text == model["training_data"] == (
        "demo, 140 images (train 100, val 20, test 20)")


def test_analyzing_a_photo_shows_the_apis_verdict_probability_threshold_and_heatmap(
        browser, server, photo, tmp_path):
    analyze(browser, server, photo)

    answer = api_answer(server, photo).json()["results"][0]
    assert element(browser, "verdict").text == answer["label"].capitalize()
    assert element(browser, "fake-probability").text == f"{answer['fake_probability'] * 100:.2f} %"
    assert element(browser, "threshold").text == f"{answer['threshold'] * 100:.2f} %"
    heatmap = element(browser, "heatmap")
    wait_for(browser, lambda driver: driver.execute_script("return arguments[0].complete && "
                                                           "arguments[0].naturalWidth > 0", heatmap))
    assert heatmap.is_displayed()
    preview, overlay = element(browser, "preview-image").rect, heatmap.rect
    assert overlay["width"] == pytest.approx(preview["width"], abs=2)  # whole image scored: heatmap covers it
    assert answer["heatmap"]["method"] in element(browser, "heatmap-method").text
    assert "total" in element(browser, "timings").text
    save_screenshot(browser, tmp_path, "ui.png")

    element(browser, "heatmap-toggle").click()
    assert not heatmap.is_displayed()
    element(browser, "heatmap-toggle").click()
    assert heatmap.is_displayed()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from deepfake_detector.components.data.demo_video import render_demo_video
    from deepfake_detector.config.entities import DemoDataConfig

    path = tmp_path_factory.mktemp("videos") / "interview.mp4"
    path.write_bytes(render_demo_video(DemoDataConfig(image_size=192), 1, 3, seconds=2.0, fps=8, size=192))
    return path


def test_a_video_shows_the_apis_verdict_a_timeline_of_every_frame_and_the_worst_frames(
        browser, server, video, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server)
    element(browser, "file-input").send_keys(str(video))
    # the preview plays where this browser has the codec; the server decodes the video either way
    wait_for(browser, lambda driver: element(driver, "preview").get_attribute("data-state") in ("ready", "unreadable"))
    assert element(browser, "preview-video").get_attribute("src").startswith("blob:")
    element(browser, "analyze-button").click()
    wait_for(browser, verdict_shown)

    answer = api_answer(server, video, "video/mp4").json()["results"][0]
    assert answer["kind"] == "video"
    assert element(browser, "verdict").text == answer["label"].capitalize()
    assert element(browser, "fake-probability").text == f"{answer['fake_probability'] * 100:.2f} %"
    assert element(browser, "timeline").is_displayed()
    points = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart circle.timeline-point")
    assert [float(point.get_attribute("data-probability")) for point in points] == pytest.approx(
        [frame["fake_probability"] for frame in answer["frames"]])
    assert [float(point.get_attribute("data-timestamp")) for point in points] == pytest.approx(
        [frame["timestamp_s"] for frame in answer["frames"]])
    threshold = element(browser, "timeline-threshold")
    assert float(threshold.get_attribute("data-value")) == pytest.approx(answer["threshold"])
    assert answer["aggregation"]["description"] in element(browser, "timeline-summary").text
    assert f"{len(answer['frames'])} frames" in element(browser, "scored-region").text

    worst = browser.find_elements(By.CSS_SELECTOR, "#worst-frames .worst-frame")
    assert len(worst) == len(answer["worst_frames"]) == 3
    for item in worst:
        picture = item.find_element(By.TAG_NAME, "img")
        wait_for(browser, lambda driver, picture=picture: driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", picture))
    boxes = browser.find_elements(By.CSS_SELECTOR, "#worst-frames .face-box")
    assert len(boxes) == sum(frame["face"] is not None for frame in answer["worst_frames"])
    save_screenshot(browser, tmp_path, "ui-video.png")


def test_the_page_works_under_a_strict_content_security_policy_with_a_clean_console(browser, server, photo):
    """Upload, verdict, heatmap and its toggle, face boxes: no console error at all, so no blocked script,
    style or image, while the policy allows no inline script or style."""
    import matplotlib.cbook

    policy = requests.get(server, timeout=WAIT_S).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy
    console_messages(browser)
    analyze(browser, server, photo)
    heatmap = element(browser, "heatmap")
    wait_for(browser, lambda driver: driver.execute_script("return arguments[0].complete && "
                                                           "arguments[0].naturalWidth > 0", heatmap))
    element(browser, "heatmap-toggle").click()
    element(browser, "heatmap-toggle").click()
    analyze(browser, server, Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    wait_for(browser, lambda driver: driver.find_elements("css selector", "#face-boxes .face-box"))
    errors = [entry["message"] for entry in console_messages(browser) if entry["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"


def test_a_found_face_is_boxed_on_the_preview_and_the_heatmap_covers_its_crop(browser, server, tmp_path):
    import matplotlib.cbook

    portrait = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    analyze(browser, server, portrait)

    answer = api_answer(server, portrait).json()["results"][0]
    assert answer["scored_region"] == "face"
    assert element(browser, "fake-probability").text == f"{answer['fake_probability'] * 100:.2f} %"
    assert "face" in element(browser, "scored-region").text
    boxes = browser.find_elements("css selector", "#face-boxes .face-box")
    assert len(boxes) == 1 and boxes[0].is_displayed()
    shown = element(browser, "preview-image").rect
    scale = shown["width"] / answer["width"]
    x, y, width, height = answer["faces"][0]["box"]
    assert boxes[0].rect["x"] - shown["x"] == pytest.approx(x * scale, abs=2)
    assert boxes[0].rect["y"] - shown["y"] == pytest.approx(y * scale, abs=2)
    assert boxes[0].rect["width"] == pytest.approx(width * scale, abs=2)
    assert boxes[0].rect["height"] == pytest.approx(height * scale, abs=2)
    heatmap_x, _, heatmap_width, _ = answer["heatmap"]["box"]
    heatmap = element(browser, "heatmap")
    assert heatmap.rect["x"] - shown["x"] == pytest.approx(heatmap_x * scale, abs=2)
    assert heatmap.rect["width"] == pytest.approx(heatmap_width * scale, abs=2)
    save_screenshot(browser, tmp_path, "ui-face.png")


def test_a_dropped_photo_is_analyzed_at_once(browser, server):
    browser.get(server)
    browser.execute_script("""
        const canvas = document.createElement("canvas");
        canvas.width = 120; canvas.height = 90;
        const context = canvas.getContext("2d");
        context.fillStyle = "#c08060"; context.fillRect(0, 0, 120, 90);
        context.fillStyle = "#402010"; context.fillRect(40, 20, 40, 50);
        canvas.toBlob((blob) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([blob], "dropped.png", {type: "image/png"}));
          const zone = document.getElementById("drop-zone");
          zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
          zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }, "image/png");
    """)
    wait_for(browser, verdict_shown)
    assert "dropped.png" in element(browser, "file-name").text


def test_the_servers_error_message_is_shown_for_a_file_that_is_not_an_image(browser, server, tmp_path):
    fake_jpeg = tmp_path / "notes.jpg"
    fake_jpeg.write_text("just some text, renamed to look like a photo")
    response = api_answer(server, fake_jpeg)
    assert response.status_code == 400
    message = response.json()["error"]["message"]

    browser.get(server)
    element(browser, "file-input").send_keys(str(fake_jpeg))
    element(browser, "analyze-button").click()
    wait_for(browser, error_shown)
    assert element(browser, "error").text == message
    assert element(browser, "verdict").text == ""


def test_a_file_of_the_wrong_type_is_refused_before_upload(browser, server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    browser.get(server)
    element(browser, "file-input").send_keys(str(notes))
    wait_for(browser, error_shown)
    assert "notes.txt: not a supported image type" in element(browser, "error").text
    assert not element(browser, "analyze-button").is_enabled()


def test_drop_zone_is_reached_by_tab_shows_focus_and_opens_the_picker_with_enter_and_space(browser, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(server)
    # Record the picker being asked for instead of opening a native dialog headless Chromium cannot show.
    browser.execute_script("""
        window.pickerRequests = 0;
        document.getElementById("file-input").addEventListener("click", (event) => {
          window.pickerRequests += 1; event.preventDefault();
        });
    """)
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "drop-zone"
    assert focused.value_of_css_property("outline-style") != "none"
    focused.send_keys(Keys.ENTER)
    focused.send_keys(Keys.SPACE)
    assert browser.execute_script("return window.pickerRequests") == 2
    assert element(browser, "result").get_attribute("aria-live") == "polite"


def test_page_fits_a_phone_screen(browser, server, tmp_path):
    browser.get(server)
    browser.set_window_size(390, 844)
    try:
        overflow = browser.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow
        save_screenshot(browser, tmp_path, "ui-phone.png")
    finally:
        browser.set_window_size(1200, 1000)


def test_without_a_model_the_page_says_so_and_analysis_reports_the_server_refusal(
        browser, server_without_model, photo):
    browser.get(server_without_model)
    banner = element(browser, "model-missing")
    assert "No trained model loaded" in banner.text and "make run" in banner.text
    assert element(browser, "model-info").get_attribute("data-loaded") == "false"
    element(browser, "file-input").send_keys(str(photo))
    element(browser, "analyze-button").click()
    wait_for(browser, error_shown)
    refusal = api_answer(server_without_model, photo)
    assert refusal.status_code == 503 and refusal.json()["error"]["code"] == "model_not_ready"
    assert element(browser, "error").text == refusal.json()["error"]["message"]
