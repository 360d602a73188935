"""The plot files: names DVC is wired to, strict JSON, one confusion row per image, real PNGs."""
import csv
import io
import json

import pytest
from PIL import Image

from deepfake_detector.components.evaluation.plots import draw_generalization, png_bytes, write_plots

LABELS = [0, 0, 0, 0, 1, 1, 1, 1]
PROBS = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
THRESHOLD = 0.5

DATA_FILES = ("roc.json", "precision_recall.json", "calibration.json", "confusion.csv")
IMAGE_FILES = ("roc.png", "precision_recall.png", "calibration.png", "confusion_matrix.png",
               "score_histogram.png")


def _refuse_non_finite(constant):
    raise ValueError(f"{constant} is not valid JSON")


def read_strict_json(path):
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_non_finite)


@pytest.fixture(scope="module")
def plot_files(tmp_path_factory):
    plots_dir = tmp_path_factory.mktemp("plots")
    return write_plots(plots_dir, LABELS, PROBS, THRESHOLD, n_bins=4, threshold_label="EER on val")


def test_every_plot_file_is_written_under_its_name(plot_files):
    assert set(plot_files) == set(DATA_FILES + IMAGE_FILES)
    assert all(path.name == name and path.is_file() for name, path in plot_files.items())


def test_no_temporary_files_are_left_behind(plot_files):
    plots_dir = plot_files["roc.json"].parent
    assert sorted(p.name for p in plots_dir.iterdir()) == sorted(DATA_FILES + IMAGE_FILES)


def test_roc_data_is_a_list_of_points_under_roc(plot_files):
    points = read_strict_json(plot_files["roc.json"])["roc"]
    assert set(points[0]) == {"fpr", "tpr", "threshold"}
    assert (points[0]["fpr"], points[0]["tpr"]) == (0.0, 0.0)
    assert (points[-1]["fpr"], points[-1]["tpr"]) == (1.0, 1.0)


def test_precision_recall_data_is_a_list_of_points(plot_files):
    points = read_strict_json(plot_files["precision_recall.json"])["precision_recall"]
    assert set(points[0]) == {"precision", "recall", "threshold"}
    assert points[0]["recall"] == 1.0


def test_calibration_data_holds_each_non_empty_bin(plot_files):
    bins = read_strict_json(plot_files["calibration.json"])["calibration"]
    # Four bins of width 0.25: [0.1, 0.2], [0.3, 0.4], [0.6, 0.7], [0.8, 0.9].
    assert [b["count"] for b in bins] == [2, 2, 2, 2]
    assert bins[0] == pytest.approx({"bin_lower": 0.0, "bin_upper": 0.25, "mean_predicted": 0.15,
                                     "fraction_positive": 0.0, "count": 2})


def test_confusion_data_has_one_named_row_per_image(plot_files):
    with open(plot_files["confusion.csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(LABELS)
    # At 0.5 the real 0.6 is called fake and the fake 0.4 real.
    pairs = [(row["actual"], row["predicted"]) for row in rows]
    assert pairs == [("real", "real")] * 3 + [("real", "fake"), ("fake", "real")] + [("fake", "fake")] * 3


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_images_are_readable_pngs(plot_files, name):
    with Image.open(plot_files[name]) as image:
        assert image.format == "PNG"
        assert min(image.size) >= 300


GENERALIZATION_SETS = [
    {"name": "trained-family", "seen": True, "roc_auc": 0.99, "roc_auc_ci_low": 0.97, "roc_auc_ci_high": 1.0},
    {"name": "other-family", "seen": False, "roc_auc": 0.62, "roc_auc_ci_low": 0.55, "roc_auc_ci_high": 0.7},
    {"name": "reals-only", "seen": False, "roc_auc": None},
]


def test_generalization_plot_marks_seen_sets_apart_beside_the_test_auc_and_chance():
    figure = draw_generalization(GENERALIZATION_SETS, reference_auc=0.998, unseen_mean_auc=0.62)
    (axes,) = figure.axes
    assert [label.get_text() for label in axes.get_xticklabels()] == ["trained-family", "other-family"]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "not seen in training" in legend and "seen in training" in legend
    assert "in-distribution test (AUC = 0.998)" in legend and "chance (AUC = 0.5)" in legend
    lines = {tuple(line.get_ydata()) for line in axes.get_lines() if len(line.get_ydata()) == 2}
    assert {(0.998, 0.998), (0.5, 0.5), (0.62, 0.62)} <= lines


def test_generalization_plot_whiskers_span_each_interval():
    figure = draw_generalization(GENERALIZATION_SETS[1:2], reference_auc=None)
    (axes,) = figure.axes
    whiskers = next(collection for collection in axes.collections if len(collection.get_segments()) == 1)
    (segment,) = whiskers.get_segments()
    assert sorted(segment[:, 1]) == pytest.approx([0.55, 0.7])


def test_generalization_plot_is_a_png():
    png = png_bytes(draw_generalization(GENERALIZATION_SETS, reference_auc=0.998))
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and min(image.size) >= 300
