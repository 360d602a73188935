"""The slim image has what the app needs: in a process that can import only the standard library, the project and
what requirements-serve.txt installs, create_app() loads the TFLite export in auto mode (no .h5, as in the image),
renders the page, and scores and explains an image with face cropping on."""
import json
import os
import subprocess
import sys
import textwrap

from tests.deploy.image_model import REPO_ROOT, serving_modules, third_party, write_import_blocker
from tests.tiny_served_model import tiny_model_for_session, write_photo

CHILD = textwrap.dedent("""
    import json, sys
    from deepfake_detector.serving.app_factory import create_app

    client = create_app().test_client()
    statuses = {"readyz": client.get("/readyz").status_code, "page": client.get("/").status_code,
                "model": client.get("/api/v1/model").status_code}
    with open(sys.argv[1], "rb") as photo:
        answer = client.post("/api/v1/predict?explain=true", data={"file": (photo, "face.jpg")})
    statuses["predict"] = answer.status_code
    print(json.dumps({"statuses": statuses, "answer": answer.get_json(), "modules": sorted(sys.modules)}))
""")

TRAINING_STACK = {"tensorflow", "keras", "mlflow", "dvc", "pandas", "sklearn", "matplotlib", "h5py",
                  "dagshub", "kagglehub", "requests", "imagehash", "psutil"}


def test_app_serves_with_only_the_serving_packages_importable(tmp_path_factory, tmp_path):
    tiny = tiny_model_for_session(tmp_path_factory)
    blocker = write_import_blocker(tmp_path / "blocker")
    photo = write_photo(tmp_path / "face.jpg")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO_ROOT / "src")]),
                   "DEEPFAKE_DETECTOR_EXPORT_DIR": str(tiny.export_dir),
                   "DEEPFAKE_DETECTOR_MODEL": str(tmp_path / "absent" / "model.h5"),
                   "DEEPFAKE_DETECTOR_BACKEND": "auto", "DEEPFAKE_DETECTOR_FACE_DETECTOR": "blazeface"}

    result = subprocess.run([sys.executable, "-c", CHILD, str(photo)], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["statuses"] == {"readyz": 200, "page": 200, "model": 200, "predict": 200}, result.stderr[-4000:]
    assert report["answer"]["backend"] == "tflite"
    assert report["answer"]["results"][0]["heatmap"]["method"] == "occlusion"
    imported = third_party(report["modules"])
    assert imported <= serving_modules(), imported - serving_modules()
    assert not imported & TRAINING_STACK
    # The closure, measured: LiteRT, numpy, Pillow, scipy (resize), OpenCV (faces), Flask and its own dependencies,
    # YAML + pydantic.
    assert {"ai_edge_litert", "numpy", "PIL", "scipy", "cv2", "flask", "yaml", "pydantic"} <= imported, imported


def test_the_blocker_refuses_what_the_image_lacks(tmp_path):
    blocker = write_import_blocker(tmp_path / "blocker")
    environment = {**os.environ, "PYTHONPATH": str(blocker)}
    for module in ("tensorflow", "mlflow", "pandas"):
        result = subprocess.run([sys.executable, "-c", f"import {module}"], env=environment, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0 and "not in requirements-serve.txt" in result.stderr, module
