"""The JSON API under /api/v1: predict, model metadata and the OpenAPI document."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from deepfake_detector.serving.context import ready_service
from deepfake_detector.serving.errors import ApiError
from deepfake_detector.serving.openapi import openapi_document
from deepfake_detector.serving.payloads import read_image_request
from deepfake_detector.video.decoding import SNIFF_BYTES, sniff_video

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
# A video takes a second or more to score: one a request keeps a request within its deadline.
MAX_VIDEOS_PER_REQUEST = 1


@blueprint.post("/predict")
def predict():
    service = ready_service()
    image_request = read_image_request(request, service.config.max_images_per_request)
    videos = sum(sniff_video(upload.data[:SNIFF_BYTES]) is not None for upload in image_request.uploads)
    if videos > MAX_VIDEOS_PER_REQUEST:
        raise ApiError(413, "too_many_videos", f"{videos} videos in one request; send one video per request")
    results = [service.analyze_upload(upload.data, upload.name, explain=image_request.explain).as_api_dict()
               for upload in image_request.uploads]
    return jsonify({**service.answer_header(), "results": results})


@blueprint.get("/model")
def model():
    return jsonify(ready_service().model_info())


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
