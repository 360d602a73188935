"""POST /predict: the original project's contract, kept for existing clients.

JSON {"image": "<base64>"} in; [{"image": "Real" | "Fake", "confidence": "NN.NN%"}] out, the
confidence being the probability of the class it names.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from deepfake_detector.serving.context import ready_service
from deepfake_detector.serving.payloads import read_image_request

blueprint = Blueprint("legacy", __name__)


@blueprint.post("/predict")
def predict():
    service = ready_service()
    image_request = read_image_request(request, service.config.max_images_per_request)
    answers = []
    for upload in image_request.uploads:
        analysis = service.analyze(upload.data, upload.name)
        answers.append({"image": "Fake" if analysis.is_fake else "Real",
                        "confidence": f"{analysis.confidence * 100:.2f}%"})
    return jsonify(answers)
