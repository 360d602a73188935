"""The benchmark harness in quick mode on a tiny model: every section reports, files and README are
written, and a missing model or README markers stop it with exit code 2 before any measuring."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

from deepfake_detector.benchmarks import report, roofline
from deepfake_detector.benchmarks.cli import EXIT_CANNOT_RUN, main
from deepfake_detector.benchmarks.errors import MissingMarkersError
from deepfake_detector.benchmarks.exports import tflite_files
from deepfake_detector.benchmarks.training import FEEDS, measure_training
from deepfake_detector.contracts.decision_rule import DEFAULT_RULE
from deepfake_detector.contracts.export_layout import MODEL_CARD_NAME
from deepfake_detector.contracts.layers import BACKBONE_NAME, OUTPUT_NAME
from deepfake_detector.contracts.model_card import ExportEntry, ModelCard
from deepfake_detector.utils.files import sha256_file
from tests.pipeline.trainer_helpers import IMAGE_SIZE, training_config, write_dataset

pytestmark = pytest.mark.slow

README_TEMPLATE = ("# Project\n\nIntro.\n\n## Benchmarks\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n"
                   "\nTail.\n")


def tiny_detector() -> keras.Model:
    """The detector's layout (nested `backbone` with BatchNormalization, `p_fake` head) at a size
    whose LiteRT export and train-step tracing take a second or two, not the half minute
    even an alpha 0.35 MobileNetV2 takes; the harness does not depend on the architecture."""
    backbone = keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
        keras.layers.Conv2D(8, 3, strides=2, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.DepthwiseConv2D(3, activation="relu"),
    ], name=BACKBONE_NAME)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(backbone(x))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x))


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> dict[str, Path]:
    """A tiny model as the pipeline leaves it: model.h5, model.tflite and a model card that also
    lists a float16 file that is missing."""
    root = tmp_path_factory.mktemp("bench")
    model = tiny_detector()
    model_file = root / "model.h5"
    model.save(model_file)
    export_dir = root / "export"
    export_dir.mkdir()
    model.export(str(export_dir / "model.tflite"), format="litert", verbose=False)
    card = {"source": {"file": str(model_file), "sha256": sha256_file(model_file)},
            "output": {"threshold": 0.5, "temperature": 1.0},
            "exports": {"float32": {"file": "model.tflite", "sha256": sha256_file(export_dir / "model.tflite")},
                        "float16": {"file": "model_fp16.tflite", "sha256": "0" * 64}}}
    (export_dir / MODEL_CARD_NAME).write_text(json.dumps(card))
    return {"root": root, "model_file": model_file, "export_dir": export_dir}


@pytest.fixture(scope="module")
def quick_run(tiny_export) -> dict[str, Path]:
    """One quick CLI run without training, shared by the tests that check its outputs."""
    root = tiny_export["root"]
    readme = root / "README.md"
    readme.write_text(README_TEMPLATE)
    code = main(["--quick", "--skip-training", "--root", str(root), "--out", "bench",
                 "--model-file", str(tiny_export["model_file"]), "--export-dir", str(tiny_export["export_dir"]),
                 "--update-readme", "README.md"])
    assert code == 0
    return {"results": root / "bench" / "results.json", "markdown": root / "bench" / "results.md", "readme": readme}


def test_results_have_every_section(quick_run):
    results = json.loads(quick_run["results"].read_text())
    for section in ("machine", "settings", "model", "roofline", "inference", "preprocessing", "memory", "serving",
                    "faces", "video", "threads", "training"):
        assert section in results
    assert results["training"] == {"skipped": "--skip-training"}
    assert results["machine"]["cores"] >= 1 and results["machine"]["versions"]["keras"]


def test_inference_rows_are_positive_and_relative_to_keras_predict(quick_run):
    rows = {row["name"]: row for row in json.loads(quick_run["results"].read_text())["inference"]["rows"]}
    assert set(rows) == {"keras predict", "tf.function", "tflite float32", "load per request"}
    assert rows["keras predict"]["speedup_p50_vs_keras_predict"] == pytest.approx(1.0)
    for row in rows.values():
        assert row["single"]["p50_ms"] > 0 and row["speedup_p50_vs_keras_predict"] > 0
        assert row["roofline"]["gflops"] > 0
    assert rows["load per request"]["batch"] is None
    assert rows["tflite float32"]["batch"]["images_per_s"] > 0


def test_missing_variant_is_skipped_with_a_note(quick_run):
    inference = json.loads(quick_run["results"].read_text())["inference"]
    notes = {note["variant"]: note["reason"] for note in inference["skipped"]}
    assert "missing" in notes["float16"] and "not in the model card" in notes["int8_full"]


def test_serving_processes_report_memory_and_tensorflow_use(quick_run):
    memory = json.loads(quick_run["results"].read_text())["memory"]
    tflite, keras_process = memory["processes"]["tflite"], memory["processes"]["keras"]
    assert tflite["peak_rss_mib"] > 0 and keras_process["peak_rss_mib"] > 0
    assert keras_process["tensorflow_imported"] is True
    assert tflite["tensorflow_imported"] is False
    assert memory["rss_ratio_keras_over_tflite"] > 1


def test_api_is_measured_through_gunicorn_beside_the_bare_call(quick_run):
    serving = json.loads(quick_run["results"].read_text())["serving"]
    assert serving["backend"] == "tflite"
    assert serving["api_single_client"]["p50_ms"] > 0 and serving["bare_in_process"]["p50_ms"] > 0
    assert serving["api_concurrent"]["requests"] == 4 and serving["api_concurrent"]["requests_per_s"] > 0
    assert serving["api_raw_single_client"]["body"] == "raw" and serving["api_raw_single_client"]["p50_ms"] > 0
    # The ratios' base is the worker's inference: its interpreter threads are the cores shared among 2 workers x 3
    # predictions, never more than one process alone gets.
    assert 1 <= serving["bare_in_process"]["interpreter_threads"] <= serving["bare_all_cores"]["interpreter_threads"]
    markdown = quick_run["markdown"].read_text()
    assert "`POST /api/v1/predict` to gunicorn, multipart, one client" in markdown
    assert "gunicorn, raw body, one client" in markdown
    full_stack = serving["full_stack"]
    if "skipped" not in full_stack:  # nginx installed (make setup-browser)
        ceiling = full_stack["bare_wsgi"]  # the same stack serving bare_wsgi_app: what any app could get
        assert ceiling["body"] == "raw" and ceiling["requests"] == ceiling["clients"] * 2
        assert "The server's ceiling" in markdown and "bare WSGI app (decode + predict only)" in markdown
        for crowd in (full_stack["concurrent"], full_stack["concurrent_raw"], ceiling):
            assert crowd["requests_per_s"] in crowd["runs_requests_per_s"]
            # Each run is held to the target timed just before it; the reported share is that run's.
            assert crowd["vs_target"] == pytest.approx(crowd["requests_per_s"] / crowd["target_requests_per_s"])
            assert crowd["target_requests_per_s"] == pytest.approx(
                full_stack["target_share"] * full_stack["cores"] * 1000 / crowd["bare_p50_ms"])
        assert "the bare ms timed just before the run" in markdown


def test_preprocessing_and_threads_are_measured(quick_run):
    results = json.loads(quick_run["results"].read_text())
    assert set(results["preprocessing"]["paths"]) == {"pillow", "tensorflow"}
    assert results["preprocessing"]["source"] == "300x300 JPEG"
    assert results["preprocessing"]["oversized_header_refusal"]["p50_ms"] > 0
    assert "decompression bomb" in quick_run["markdown"].read_text()
    modes = results["threads"]["modes"]
    assert modes["per_thread_interpreters"]["requests_per_s"] > 0
    assert modes["single_interpreter_locked"]["requests_per_s"] > 0


def test_markdown_has_a_row_per_runtime_present(quick_run):
    markdown = quick_run["markdown"].read_text()
    for name in ("keras predict", "tf.function", "tflite float32", "load per request"):
        assert f"| {name} |" in markdown
    assert "| tflite float16 |" not in markdown
    assert "Not measured: float16" in markdown


def test_readme_tables_replace_only_the_marked_section(quick_run):
    readme = quick_run["readme"].read_text()
    assert "old table" not in readme
    assert readme.startswith("# Project\n\nIntro.\n\n## Benchmarks\n\n<!-- bench:start -->\n")
    assert readme.endswith("<!-- bench:end -->\n\nTail.\n")
    assert "| tflite float32 |" in readme


def test_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    with pytest.raises(MissingMarkersError, match="bench:start"):
        report.update_readme(readme, "| table |\n")
    assert readme.read_text() == "# Project\n"


def test_cli_refuses_readme_without_markers_before_measuring(tiny_export, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    code = main(["--quick", "--skip-training", "--root", str(tmp_path), "--model-file",
                 str(tiny_export["model_file"]), "--export-dir", str(tiny_export["export_dir"]),
                 "--update-readme", "README.md"])
    assert code == EXIT_CANNOT_RUN
    assert "bench:start" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("missing", ["model", "export"])
def test_missing_model_or_export_exits_2_and_says_to_run_the_pipeline(tiny_export, tmp_path, capsys, missing):
    model_file = tmp_path / "absent.h5" if missing == "model" else tiny_export["model_file"]
    export_dir = tmp_path / "no-export" if missing == "export" else tiny_export["export_dir"]
    code = main(["--quick", "--skip-training", "--root", str(tmp_path), "--model-file", str(model_file),
                 "--export-dir", str(export_dir)])
    assert code == EXIT_CANNOT_RUN
    assert "dvc repro" in capsys.readouterr().err


def test_card_variant_listed_but_absent_is_skipped(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"x")
    exports = {variant: ExportEntry(variant, file, sha256="0" * 64) for variant, file in
               (("keras", "model.keras"), ("float32", "model.tflite"), ("int8_dynamic", "model_int8.tflite"))}
    card = ModelCard(export_dir=tmp_path, source_sha256="0" * 64, rule=DEFAULT_RULE, exports=exports,
                     test_metrics={}, content={})
    present, skipped = tflite_files(card)
    assert present == {"float32": tmp_path / "model.tflite"}
    assert [note["variant"] for note in skipped] == ["float16", "int8_dynamic", "int8_full"]


def test_flops_are_counted_for_conv_depthwise_and_dense():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions x 3*3*3*4 MACs
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4 positions x 3*3*4 MACs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2)(x)  # 64*2 MACs
    nested = keras.Model(inputs, outputs)
    outer_inputs = keras.Input((8, 8, 3))
    model = keras.Model(outer_inputs, nested(outer_inputs))
    assert roofline.count_flops(model) == 2 * (8 * 8 * 3 * 3 * 3 * 4 + 4 * 4 * 3 * 3 * 4 + 64 * 2)


def test_peak_without_a_reported_clock_states_the_assumed_one():
    peak = roofline.machine_peak(cores=2, cpu={"flags": {"avx2", "fma"}, "mhz": None})
    assert peak["peak_gflops"] == pytest.approx(2 * roofline.FALLBACK_GHZ * 32)
    assert "assumed" in peak["assumption"]
    assert roofline.machine_peak(cores=1, cpu={"flags": {"avx512f"}, "mhz": 2000.0})["flop_per_cycle"] == 64


def test_training_section_times_every_feed_of_both_phases(tmp_path):
    dataset_dir, manifest = write_dataset(tmp_path, {"train": (8, 8), "val": (2, 2)})
    base_model = tmp_path / "base_model.h5"
    tiny_detector().save(base_model)
    config = training_config(tmp_path, base_model, dataset_dir, manifest, batch_size=4)
    result = measure_training(config, warmup_steps=1, steps=2)
    assert set(result["phases"]) == {"head", "fine_tune"}
    head, fine_tune = result["phases"]["head"], result["phases"]["fine_tune"]
    assert head["trainable_parameters"] < fine_tune["trainable_parameters"]
    for phase in (head, fine_tune):
        assert set(phase["feeds"]) == set(FEEDS)
        assert all(feed["images_per_s"] > 0 and feed["step"]["reps"] == 2 for feed in phase["feeds"].values())
        assert phase["files_over_memory"] > 0


def test_section_measured_under_contention_is_flagged(quick_run):
    results = json.loads(quick_run["results"].read_text())
    # Every section quiet but one, whatever else the machine was doing while the quick run measured.
    for section in ("inference", "preprocessing", "memory", "serving"):
        results[section]["other_processes_cpu_share"] = 0.0
    results["threads"]["other_processes_cpu_share"] = 0.5
    markdown = report.render_tables(results)
    assert markdown.count("Caution: other processes used 50% of the CPU") == 1


def test_face_detection_is_timed_and_its_findings_counted(quick_run):
    section = json.loads(quick_run["results"].read_text())["faces"]
    assert set(section["detectors"]) == {"blazeface", "blazeface_full_range"}
    short_range = section["detectors"]["blazeface"]
    assert short_range["timings"]["native"]["p50_ms"] > 0 and short_range["timings"]["aligned"]["p50_ms"] > 0
    found = short_range["found"]
    # Astronaut, cameraman and Grace Hopper are unmistakable faces; a 300 px demo scene holds one too.
    assert found["photographs of a face"] == {"found": 3, "total": 3, "expect_face": True}
    assert found["demo faces"]["found"] >= found["demo faces"]["total"] - 1
    assert found["pictures without a face"]["found"] <= 2
    assert "**Faces**" in quick_run["markdown"].read_text()


def test_a_video_is_timed_through_the_api_with_and_without_faces(quick_run):
    section = json.loads(quick_run["results"].read_text())["video"]
    assert set(section["rows"]) == {"off", "blazeface"}
    for row in section["rows"].values():
        short, long = row["short"], row["long"]
        assert short["frames"] == long["frames"] == 16 and min(short["seconds"]) > 0
        assert long["duration_s"] == pytest.approx(6 * short["duration_s"], rel=0.05)
        assert short["peak_rss_mib"] > short["analysis_extra_mib"] >= 0
    assert section["rows"]["off"]["short"]["frames_with_face"] == 0
    assert section["rows"]["blazeface"]["short"]["frames_with_face"] >= 12  # the demo face, followed
    assert "**Video**" in quick_run["markdown"].read_text()
