"""POST /predict: the original project's contract, kept for existing clients.

JSON {"image": "<base64>"} in; [{"image": "Real" | "Fake", "confidence": "NN.NN%"}] out. The original
page decided at 0.5 and showed the probability of the class it named, so its users never saw a
confidence under 50 %; `legacy_confidence` keeps that true at any threshold.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from deepfake_detector.serving.context import ready_service
from deepfake_detector.serving.payloads import read_image_request

blueprint = Blueprint("legacy", __name__)


def legacy_confidence(p_fake: float, threshold: float) -> float:
    """How sure the verdict at threshold is: 50 % at the threshold, 100 % at P(fake) 0 or 1.

    P(fake) p goes through the monotone piecewise-linear map q with q(0) = 0, q(t) = 0.5, q(1) = 1
    (linear on each side of the threshold t), and the confidence is q for "Fake" (p >= t) and 1 - q for
    "Real":

        p >= t:  0.5 + 0.5 * (p - t) / (1 - t)
        p <  t:  0.5 + 0.5 * (t - p) / t

    So it agrees with the verdict, never falls below 0.5, grows as p moves away from the threshold, and
    at t = 0.5 equals the original answer (p, or 1 - p). At other thresholds it is not a probability;
    /api/v1/predict reports the calibrated P(fake) and the threshold themselves. t lies strictly between
    0 and 1, as every DecisionRule's does.
    """
    if p_fake >= threshold:
        return 0.5 + 0.5 * (p_fake - threshold) / (1.0 - threshold)
    return 0.5 + 0.5 * (threshold - p_fake) / threshold


@blueprint.post("/predict")
def predict():
    service = ready_service()
    image_request = read_image_request(request, service.config.max_images_per_request)
    answers = []
    for upload in image_request.uploads:
        analysis = service.analyze(upload.data, upload.name)
        confidence = legacy_confidence(analysis.fake_probability, analysis.threshold)
        answers.append({"image": "Fake" if analysis.is_fake else "Real", "confidence": f"{confidence * 100:.2f}%"})
    return jsonify(answers)
