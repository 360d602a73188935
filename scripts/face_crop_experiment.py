"""Which face crop the locked model can score: its own center crops against crop_face's native and aligned crops,
on the test split of the locked run (needs `make run` first). Prints the ROC AUC of each, the table in
docs/faces.md.

    python scripts/face_crop_experiment.py
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

from sklearn.metrics import roc_auc_score

from deepfake_detector.inference.face_crop import crop_face
from deepfake_detector.inference.face_detection import FaceDetector
from deepfake_detector.inference.images import decode_image, load_image
from deepfake_detector.inference.predictor import TFLitePredictor

logger = logging.getLogger("face_crop_experiment")

PREDICTIONS = Path("artifacts/evaluation/predictions.csv")
DATASET = Path("artifacts/data_ingestion/dataset")
EXPORT = Path("artifacts/export/model.tflite")
SIZE = 224


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with PREDICTIONS.open(newline="", encoding="utf-8") as file:
        rows = [row for row in csv.DictReader(file) if row["split"] == "test"]
    predictor = TFLitePredictor(EXPORT, input_fit="crop")
    detector = FaceDetector()
    labels, scores = [], {"center crop (as trained)": [], "native face crop": [], "aligned face crop": []}
    for row in rows:
        path = DATASET / row["path"]
        image = decode_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        labels.append(int(row["label"]))
        inputs = {"center crop (as trained)": load_image(path, SIZE, fit="crop"),
                  "native face crop": crop_face(image, faces[0], SIZE, mode="native").pixels,
                  "aligned face crop": crop_face(image, faces[0], SIZE, mode="aligned").pixels}
        for name, pixels in inputs.items():
            scores[name].append(float(predictor.predict(pixels[None])[0]))
    logger.info("faces found in %d of %d test images", len(labels), len(rows))
    for name, values in scores.items():
        logger.info("%-26s ROC AUC %.3f", name, roc_auc_score(labels, values))


if __name__ == "__main__":
    main()
