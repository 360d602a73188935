"""The HTML evaluation report: every section, CI values, worst errors, no external request, escaping,
a note instead of a crash for each input a run did not produce, and the stage gathering its inputs."""
from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.evaluation.report import ReportBuilder, write_report
from deepfake_detector.components.evaluation.report_inputs import Provenance, ReportInputs
from deepfake_detector.components.evaluation.report_sections import SECTIONS
from deepfake_detector.config.entities import ReportConfig
from deepfake_detector.contracts.decision_rule import DecisionRule
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.scores import read_scores

SECTION_IDS = ["summary", "metrics", "confusion", "curves", "calibration", "robustness", "cross-dataset",
               "shortcut-audit", "errors", "params"]
NOT_PRODUCED = "not produced by this run"
THRESHOLD = 0.5
SCORES = {
    "accuracy": 0.9, "balanced_accuracy": 0.9, "precision": 0.875, "recall": 0.95, "f1": 0.91,
    "roc_auc": 0.96, "average_precision": 0.95, "eer": 0.08, "tpr_at_fpr_1pct": 0.4, "log_loss": 0.3,
    "ece": 0.05, "threshold": THRESHOLD, "total_parameters": 2259265, "n_test": 8, "n_val": 4,
    "accuracy_ci_low": 0.81234, "accuracy_ci_high": 0.95678, "roc_auc_ci_low": 0.9012, "roc_auc_ci_high": 0.9987,
    "eer_ci_low": 0.031, "eer_ci_high": 0.142, "temperature": 1.7, "ece_calibrated": 0.021,
}
PARAMS = {"model": {"alpha": 0.35, "weights": None, "flip": True, "sizes": [32, 64]},
          "train": {"learning_rate": 0.001, "epochs": 3}, "evaluate": {"threshold": "eer"}}
# (path, label, split, p_fake): two false positives and two false negatives on test, distractors on val.
ROWS = [
    ("real/calm.jpg", 0, "test", 0.10),
    ("real/mild_fp.jpg", 0, "test", 0.62),
    ("real/worst_fp.jpg", 0, "test", 0.97),
    ("fake/caught.jpg", 1, "test", 0.88),
    ("fake/mild_fn.jpg", 1, "test", 0.41),
    ("fake/worst_fn.jpg", 1, "test", 0.03),
    ("fake/caught2.jpg", 1, "test", 0.91),
    ("real/calm2.jpg", 0, "test", 0.20),
    ("real/val_only.jpg", 0, "val", 0.999),
    ("fake/val_only.jpg", 1, "val", 0.001),
]


class Page(HTMLParser):
    """Every tag's attributes, the section ids, and the text of <style> blocks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def attributes(self, tag: str, name: str) -> list[str | None]:
        return [attrs.get(name) for found, attrs in self.tags if found == tag]


def write_png(path: Path, color: tuple[int, int, int] = (200, 40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (48, 32), color)
    image.paste((20, 20, 160), (8, 8, 24, 24))
    image.save(path, format="PNG")
    return path


def write_jpeg(path: Path, size: tuple[int, int] = (48, 48), orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (120, 90, 60))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, format="JPEG", exif=exif.tobytes())
    return path


ROBUSTNESS = {"clean": {"roc_auc": 0.96, "accuracy": 0.9, "eer": 0.08},
              "jpeg": {"90": {"roc_auc": 0.95, "accuracy": 0.88, "eer": 0.09},
                       "30": {"roc_auc": 0.71, "accuracy": 0.66, "eer": 0.31}},
              "blur": {"1.5": {"roc_auc": 0.83, "accuracy": 0.74, "eer": 0.2}}}
CROSS_DATASET = {"reference": {"name": "demo test", "n": 8, "roc_auc": 0.96, "accuracy": 0.9, "eer": 0.08},
                 "sets": [{"name": "other-gan", "source": "folder:/data/other", "seen": False, "n": 1200,
                           "n_fake": 600, "n_real": 600, "roc_auc": 0.612, "roc_auc_ci_low": 0.58,
                           "roc_auc_ci_high": 0.641, "accuracy": 0.55, "accuracy_ci_low": 0.521,
                           "accuracy_ci_high": 0.579, "eer": 0.41, "average_precision": 0.6},
                          {"name": "same-family", "source": "demo:a", "seen": True, "n": 100, "n_fake": 50,
                           "n_real": 50, "roc_auc": 0.95, "roc_auc_ci_low": 0.91, "roc_auc_ci_high": 0.98,
                           "accuracy": 0.9, "eer": 0.1, "average_precision": 0.94},
                          {"name": "only-fakes", "source": "folder:/data/fakes", "seen": False, "n": 10, "n_fake": 10,
                           "n_real": 0, "roc_auc": None, "accuracy": 0.7, "eer": None, "average_precision": None,
                           "note": "only fake images"}],
                 "summary": {"n_sets": 1, "sets": ["other-gan"], "mean_roc_auc": 0.612, "mean_roc_auc_ci_low": 0.58,
                             "mean_roc_auc_ci_high": 0.641, "min_roc_auc": 0.612, "min_roc_auc_set": "other-gan",
                             "mean_accuracy": 0.55, "mean_accuracy_ci_low": 0.521, "mean_accuracy_ci_high": 0.579,
                             "min_accuracy": 0.55, "min_accuracy_set": "other-gan"}}
SHORTCUT_AUDIT = {"warn_auc": 0.8, "flagged": ["jpeg_quality"], "n_images": 40, "folds": 5,
                  "cues": {"jpeg_quality": {"auc": 0.97, "description": "estimated JPEG quality", "flagged": True},
                           "brightness": {"auc": 0.55, "description": "mean brightness", "flagged": False}}}
PLOT_NAMES = ("roc", "precision_recall", "calibration", "confusion_matrix", "score_histogram", "reliability")
# Five evaluate plots, reliability, robustness, the per-set AUC of unseen generators, four error thumbnails.
FULL_REPORT_IMAGES = 5 + 1 + 1 + 1 + 4


def write_scores(path: Path, scores: dict = SCORES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scores), encoding="utf-8")
    return path


def predictions_frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["path", "label", "split", "p_fake"]).assign(
        predicted=lambda frame: (frame["p_fake"] >= THRESHOLD).astype(int))


@pytest.fixture
def inputs(tmp_path) -> ReportInputs:
    dataset = tmp_path / "dataset"
    for path, *_ in ROWS:
        write_jpeg(dataset / path)
    plots_dir = tmp_path / "plots"
    return ReportInputs(
        scores=read_scores(write_scores(tmp_path / "scores.json")),
        params=PARAMS,
        plots={name: write_png(plots_dir / f"{name}.png") for name in PLOT_NAMES},
        predictions=predictions_frame(),
        dataset_dir=dataset,
        robustness=ROBUSTNESS,
        robustness_png=write_png(tmp_path / "robustness" / "robustness.png", (40, 160, 40)),
        cross_dataset=CROSS_DATASET,
        shortcut_audit=SHORTCUT_AUDIT,
        provenance=Provenance(commit="0123456789abcdef0123", dirty=False),
    )


@pytest.fixture
def report_config(tmp_path) -> ReportConfig:
    """Where the report stage finds its inputs; nothing is written there yet."""
    return ReportConfig(
        html_file=tmp_path / "report" / "index.html", scores_file=tmp_path / "scores.json",
        predictions_file=tmp_path / "evaluation" / "predictions.csv", plots_dir=tmp_path / "evaluation" / "plots",
        dataset_dir=tmp_path / "dataset", robustness_metrics_file=tmp_path / "robustness" / "robustness.json",
        robustness_png_file=tmp_path / "robustness" / "robustness.png", cross_dataset_file=tmp_path / "cross.json",
        shortcut_audit_file=tmp_path / "shortcut_audit.json", training_run_file=tmp_path / "training_run.json",
        params=PARAMS)


def write_stage_outputs(config: ReportConfig) -> None:
    """What evaluate, robustness, cross_dataset and shortcut_audit leave for the report."""
    write_scores(config.scores_file)
    config.predictions_file.parent.mkdir(parents=True, exist_ok=True)
    predictions_frame().to_csv(config.predictions_file, index=False)
    for name in PLOT_NAMES:
        write_png(config.plots_dir / f"{name}.png")
    for path, _, _, _ in ROWS:
        write_jpeg(config.dataset_dir / path)
    config.robustness_metrics_file.parent.mkdir(parents=True, exist_ok=True)
    config.robustness_metrics_file.write_text(json.dumps(ROBUSTNESS), encoding="utf-8")
    write_png(config.robustness_png_file)
    config.cross_dataset_file.write_text(json.dumps(CROSS_DATASET), encoding="utf-8")
    config.shortcut_audit_file.write_text(json.dumps(SHORTCUT_AUDIT), encoding="utf-8")


def with_threshold(inputs: ReportInputs, threshold: float) -> ReportInputs:
    return replace(inputs, scores=replace(inputs.scores, rule=DecisionRule(threshold, inputs.scores.rule.temperature)))


def compact(html: str) -> str:
    """html with the whitespace between tags taken out, so patterns ignore line breaks."""
    return re.sub(r">\s+<", "><", html)


def render(inputs: ReportInputs, **changes) -> str:
    """The written report for inputs (with changes applied), compacted."""
    out_file = inputs.scores.path.parent / "report" / "index.html"
    return compact(write_report(replace(inputs, **changes), out_file).read_text(encoding="utf-8"))


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{re.escape(section_id)}">(.*?)</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


def captions(html_fragment: str) -> list[str]:
    return [re.sub(r"<br>.*", "", text, flags=re.S) for text in re.findall(r"<figcaption>(.*?)</figcaption>",
                                                                             html_fragment, re.S)]


def test_every_section_is_present_once_and_linked_from_the_nav(inputs):
    html = render(inputs)
    page = Page(html)
    assert [attrs["id"] for tag, attrs in page.tags if tag == "section"] == SECTION_IDS
    assert [section_id for section_id, _ in SECTIONS] == SECTION_IDS
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S).group(1)
    assert re.findall(r'href="#([^"]+)"', nav) == SECTION_IDS


def test_metrics_show_values_with_their_95_percent_confidence_intervals(inputs):
    metrics = section(render(inputs), "metrics")
    accuracy_row = re.search(r'<tr data-metric="accuracy">(.*?)</tr>', metrics, re.S).group(1)
    assert "0.900" in accuracy_row and "0.812 – 0.957" in accuracy_row
    assert "0.901 – 0.999" in re.search(r'<tr data-metric="roc_auc">(.*?)</tr>', metrics, re.S).group(1)
    # No CI given for F1: its row has the value and an empty CI cell, never a made-up interval.
    f1_row = re.search(r'<tr data-metric="f1">(.*?)</tr>', metrics, re.S).group(1)
    assert "0.910" in f1_row and "–" not in f1_row
    assert 'data-metric="accuracy_ci_low"' not in metrics and 'data-metric="n_test"' not in metrics


def test_summary_and_header_show_headline_numbers_commit_and_parameter_count(inputs):
    html = render(inputs)
    summary = section(html, "summary")
    assert "0.960" in summary and "95 % CI 0.901 – 0.999" in summary
    assert "8 test images" in summary and "jpeg_quality" in summary
    header = re.search(r"<header>(.*?)<nav>", html, re.S).group(1)
    assert "0123456789ab" in header and "2,259,265 model parameters" in header
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", header)
    assert "commit" not in re.search(r"<header>(.*?)<nav>", render(inputs, provenance=Provenance()), re.S).group(1)


def test_worst_false_positive_is_the_real_test_image_scored_most_fake(inputs):
    errors = section(render(inputs), "errors")
    false_positives, false_negatives = errors.split("False negatives")
    assert captions(false_positives) == ["worst_fp.jpg", "mild_fp.jpg"]
    assert captions(false_negatives) == ["worst_fn.jpg", "mild_fn.jpg"]
    assert "P(fake) 0.9700" in false_positives and "P(fake) 0.0300" in false_negatives
    assert "val_only" not in errors


def test_worst_k_caps_each_gallery(inputs):
    errors = section(render(inputs, worst_k=1), "errors")
    false_positives, false_negatives = errors.split("False negatives")
    assert captions(false_positives) == ["worst_fp.jpg"] and captions(false_negatives) == ["worst_fn.jpg"]


def test_a_run_without_mistakes_says_there_are_none(inputs):
    errors = section(render(with_threshold(inputs, 0.02)), "errors")
    assert "No false positives" not in errors
    assert "No false negatives on the test split" in errors


def test_thumbnails_are_upright_jpegs_no_larger_than_112_pixels(inputs):
    # EXIF orientation 6: the camera stored a portrait photo sideways; viewers (and the report) turn it.
    write_jpeg(inputs.dataset_dir / "real/worst_fp.jpg", size=(300, 150), orientation=6)
    errors = section(render(inputs), "errors")
    sources = [src for src in Page(errors).attributes("img", "src")]
    assert len(sources) == 4
    thumbnail = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (56, 112)


def test_every_image_is_an_embedded_data_uri_and_nothing_points_off_the_page(inputs):
    html = render(inputs)
    page = Page(html)
    sources = page.attributes("img", "src")
    assert len(sources) == FULL_REPORT_IMAGES
    assert all(src and re.match(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+$", src) for src in sources)
    references = [value for _, attrs in page.tags for name, value in attrs.items()
                  if name in ("src", "href", "srcset", "action", "data") and value]
    references += re.findall(r"url\(([^)]*)\)", " ".join(page.styles))
    assert references
    assert not [ref for ref in references if re.match(r"\s*['\"]?\s*(https?:)?//", ref, re.I)]
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html


def test_without_optional_inputs_each_section_says_it_was_not_produced(tmp_path):
    html = render(ReportInputs(scores=read_scores(write_scores(tmp_path / "scores.json"))))
    for section_id in ("confusion", "curves", "robustness", "cross-dataset", "shortcut-audit", "errors", "params"):
        assert NOT_PRODUCED in section(html, section_id), section_id
    # Calibration numbers are in the scores, so that section has something to show.
    assert "Temperature" in section(html, "calibration") and NOT_PRODUCED not in section(html, "calibration")
    assert NOT_PRODUCED not in section(html, "metrics")
    assert "<img" not in html


def test_a_plot_or_thumbnail_file_that_is_gone_is_noted_instead_of_failing(inputs):
    inputs.plots["roc"].unlink()
    (inputs.dataset_dir / "real/worst_fp.jpg").write_bytes(b"not a jpeg")
    html = render(inputs)
    assert "roc.png: file not found" in section(html, "curves")
    errors = section(html, "errors")
    assert captions(errors.split("False negatives")[0]) == ["worst_fp.jpg", "mild_fp.jpg"]
    assert "image unreadable" in errors


def test_without_a_dataset_folder_errors_are_listed_without_thumbnails(inputs):
    errors = section(render(inputs, dataset_dir=None), "errors")
    assert "worst_fp.jpg" in errors and "<img" not in errors
    assert "no dataset folder was given" in errors


def test_html_special_characters_in_names_and_descriptions_are_escaped(inputs):
    hostile = 'real/a<b onload=x>&"c".jpg'
    write_jpeg(inputs.dataset_dir / hostile)
    predictions = inputs.predictions.copy()
    predictions.loc[predictions["path"] == "real/worst_fp.jpg", "path"] = hostile
    audit = {**inputs.shortcut_audit, "cues": {"<i>cue</i>": {"auc": 0.5, "description": "<script>x</script>",
                                                               "flagged": False}}}
    html = render(inputs, predictions=predictions, shortcut_audit=audit)
    assert "a&lt;b onload=x&gt;&amp;&#34;c&#34;.jpg" in section(html, "errors")
    assert "<b onload" not in html and "<script" not in html and "<i>cue" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in section(html, "shortcut-audit")


def test_params_set_names_and_the_title_are_shown_as_text_never_as_markup(inputs):
    params = {"data": {"source": "<script>alert(1)</script>", "<img src=x onerror=y>": 1}}
    cross_dataset = {"sets": [{"name": "<script>set</script>", "source": "folder:/data/a&b", "n": 4}]}
    html = render(inputs, params=params, cross_dataset=cross_dataset, title="report <b>draft</b>")
    assert "<script" not in html and "<img src=x" not in html and "<b>draft" not in html
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in section(html, "params")
    assert "<code>data.&lt;img src=x onerror=y&gt;</code>" in section(html, "params")
    assert "<td>&lt;script&gt;set&lt;/script&gt;</td><td>folder:/data/a&amp;b</td>" in section(html, "cross-dataset")
    assert "<title>report &lt;b&gt;draft&lt;/b&gt;</title>" in html


def test_flagged_shortcut_cues_are_marked(inputs):
    audit = section(render(inputs), "shortcut-audit")
    rows = {name: marker for marker, name in re.findall(r'<tr( class="flagged")?><td>([^<]+)</td>', audit)}
    assert rows == {"jpeg_quality": ' class="flagged"', "brightness": ""}
    assert audit.count("⚠ flagged") == 1 and "0.800" in audit
    assert "1 flagged (audited on 40 images, 5-fold cross-validation)" in audit


def test_robustness_table_compares_each_perturbation_with_clean_and_embeds_its_plot(inputs):
    robustness = section(render(inputs), "robustness")
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>.*?<td class=\"num\">([^<]*)</td></tr>", robustness)
    assert rows == [("clean", "", "+0.000"), ("jpeg", "90", "-0.010"), ("jpeg", "30", "-0.250"),
                    ("blur", "1.5", "-0.130")]
    assert len(Page(robustness).attributes("img", "src")) == 1


def cross_dataset_row(html: str, name: str) -> tuple[str, str]:
    """The row's class (reference, seen or unseen) and its cells, in the unseen-generators table."""
    kind, cells = re.search(rf'<tr class="(\w+)"><td>{re.escape(name)}</td>(.*?)</tr>',
                            section(html, "cross-dataset"), re.S).groups()
    return kind, cells


def test_cross_dataset_table_reads_na_for_metrics_a_set_cannot_have(inputs):
    html = render(inputs)
    _, only_fakes = cross_dataset_row(html, "only-fakes")
    assert only_fakes.count("n/a") == 3 and "0.700" in only_fakes and "only fake images" in only_fakes
    assert "–" not in only_fakes  # no interval for a one-class set
    assert "1,200 (600 fake, 600 real)" in cross_dataset_row(html, "other-gan")[1]
    assert cross_dataset_row(html, "demo test")[0] == "reference"


def test_each_set_shows_its_intervals_and_whether_training_saw_it(inputs):
    html = render(inputs)
    kind, cells = cross_dataset_row(html, "other-gan")
    assert kind == "unseen" and "<td>no</td>" in cells
    assert '0.612<br><span class="ci">0.580 – 0.641</span>' in cells
    assert '0.550<br><span class="ci">0.521 – 0.579</span>' in cells
    kind, cells = cross_dataset_row(html, "same-family")
    assert kind == "seen" and "<td>yes</td>" in cells


def test_summary_line_gives_the_mean_over_unseen_sets_with_its_interval(inputs):
    summary = re.search(r'<p class="headline" id="unseen-summary">(.*?)</p>', render(inputs), re.S).group(1)
    assert summary == ("Over the 1 set from sources unseen in training (other-gan): mean ROC AUC 0.612 (95 % CI "
                       "0.580 – 0.641), lowest 0.612 on other-gan; mean accuracy 0.550 (95 % CI 0.521 – 0.579), "
                       "lowest 0.550 on other-gan.")


def test_without_an_unseen_two_class_set_the_summary_says_so(inputs):
    cross_dataset = {**CROSS_DATASET, "summary": {"n_sets": 0, "sets": []}}
    assert "there is no mean over unseen generators" in section(render(inputs, cross_dataset=cross_dataset),
                                                                "cross-dataset")


def test_the_per_set_auc_plot_is_embedded_only_when_a_set_has_an_auc(inputs):
    cross = section(render(inputs), "cross-dataset")
    (source,) = Page(cross).attributes("img", "src")
    with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
        assert image.format == "PNG" and min(image.size) >= 300
    only_fakes = {**CROSS_DATASET, "sets": CROSS_DATASET["sets"][2:]}
    assert "<img" not in section(render(inputs, cross_dataset=only_fakes), "cross-dataset")


def test_params_are_listed_under_their_dotted_keys(inputs):
    params = section(render(inputs), "params")
    assert re.search(r"<code>train.learning_rate</code></td><td><code>0.001</code>", params)
    assert re.search(r"<code>model.weights</code></td><td><code>null</code>", params)
    assert re.search(r"<code>model.flip</code></td><td><code>true</code>", params)
    assert re.search(r"<code>model.sizes</code></td><td><code>\[32, 64\]</code>", params)
    assert re.search(r"<code>evaluate.threshold</code></td><td><code>eer</code>", params)


def test_the_stage_gathers_every_input_from_the_configured_paths(report_config, tmp_path):
    write_stage_outputs(report_config)
    result = ReportBuilder(report_config, project_root=tmp_path).run()
    assert result.html_file == report_config.html_file
    html = compact(result.html_file.read_text(encoding="utf-8"))
    assert NOT_PRODUCED not in html
    assert len(Page(html).attributes("img", "src")) == FULL_REPORT_IMAGES
    assert "Reliability before and after calibration" in section(html, "calibration")
    assert "0.5000" in section(html, "summary") and "1.700" in section(html, "calibration")
    assert captions(section(html, "errors").split("False negatives")[0]) == ["worst_fp.jpg", "mild_fp.jpg"]


def test_the_stage_with_only_scores_reports_every_other_section_as_not_produced(report_config, tmp_path):
    write_scores(report_config.scores_file)
    html = compact(ReportBuilder(report_config, project_root=tmp_path).run().html_file.read_text(encoding="utf-8"))
    for section_id in ("confusion", "curves", "robustness", "cross-dataset", "shortcut-audit", "errors"):
        assert NOT_PRODUCED in section(html, section_id), section_id
    assert "commit" not in re.search(r"<header>(.*?)<nav>", html, re.S).group(1)  # tmp_path is no git checkout


def test_the_stage_without_scores_names_the_file_and_the_stage_to_run(report_config, tmp_path):
    with pytest.raises(ModelError, match=r"scores\.json: not found; run the evaluate stage"):
        ReportBuilder(report_config, project_root=tmp_path).run()
    assert not report_config.html_file.exists()


def test_the_header_names_the_commit_checked_out_in_the_project_root(report_config, tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "README.md").write_text("x", encoding="utf-8")
    git("add", "README.md")
    git("commit", "-q", "-m", "first")
    write_scores(report_config.scores_file)
    html = ReportBuilder(report_config, project_root=tmp_path).run().html_file.read_text(encoding="utf-8")
    assert f"commit {git('rev-parse', 'HEAD')[:12]}" in html and "uncommitted" not in html


def test_predictions_without_a_needed_column_are_refused_and_the_old_report_is_kept(report_config, tmp_path):
    write_stage_outputs(report_config)
    previous = ReportBuilder(report_config, project_root=tmp_path).run().html_file.read_text(encoding="utf-8")
    predictions_frame().drop(columns="p_fake").to_csv(report_config.predictions_file, index=False)
    with pytest.raises(ModelError, match=r"predictions\.csv: lacks column\(s\) p_fake.*rerun the evaluate stage"):
        ReportBuilder(report_config, project_root=tmp_path).run()
    assert report_config.html_file.read_text(encoding="utf-8") == previous
    assert [path.name for path in report_config.html_file.parent.iterdir()] == ["index.html"]


def test_a_negative_worst_k_is_refused(inputs):
    with pytest.raises(ValueError, match="worst_k"):
        replace(inputs, worst_k=-1)


def test_a_model_that_did_not_learn_is_flagged_at_the_top_of_the_summary(inputs, tmp_path):
    at_chance = {**SCORES, "val_roc_auc": 0.5, "val_roc_auc_ci_low": 0.31, "val_roc_auc_ci_high": 0.69,
                 "val_above_chance": False}
    summary = section(render(inputs, scores=read_scores(write_scores(tmp_path / "at_chance.json", at_chance))),
                      "summary")
    assert summary.index('id="did-not-learn"') < summary.index('class="card"')
    assert "THE MODEL DID NOT LEARN: validation ROC AUC 0.500 (95 % interval 0.310 – 0.690, 4 images)" in summary


def test_a_model_that_learned_has_no_warning(inputs, tmp_path):
    learned = {**SCORES, "val_roc_auc": 0.99, "val_roc_auc_ci_low": 0.95, "val_roc_auc_ci_high": 1.0,
               "val_above_chance": True}
    assert "did-not-learn" not in render(inputs, scores=read_scores(write_scores(tmp_path / "learned.json", learned)))
