"""The OpenAPI 3 description of every route the app serves, served at /api/v1/openapi.json."""
from __future__ import annotations

from typing import Any

from deepfake_detector import __version__
from deepfake_detector.contracts.video_aggregation import AGGREGATIONS


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_BAD_INPUT = {
    "400": _error("bad input: missing_image, invalid_image, invalid_video (corrupt, truncated, no video stream or "
                  "no frames), invalid_json, invalid_base64, invalid_parameter, malformed_multipart"),
    "413": _error("request_too_large, image_too_large, video_too_large (duration, frame size or frames decoded "
                  "over serve.video_max_*), too_many_images, too_many_videos (one a request) or too_many_parts"),
    "415": _error("unsupported_media_type: neither multipart/form-data, JSON, image/*, video/* nor "
                  "application/octet-stream"),
    "503": _error("model_not_ready: no model is loaded, or its decision rule cannot be applied; overloaded: every "
                  "prediction slot of the worker is busy (serve.max_in_flight) and its queue is full "
                  "(serve.max_queued); deadline_exceeded: the request ran past serve.request_deadline_s, waiting "
                  "for a slot or working. The last two carry a Retry-After header (seconds)"),
}

_IMAGE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                     "description": "one or more images (repeat the field), or one video (mp4, mov, webm, avi; "
                                    "told by its content)"},
            "explain": {"type": "boolean"}}}},
        "application/json": {"schema": {"$ref": "#/components/schemas/Base64Images"}},
        # One image as the whole body: the cheapest to send and to parse (no form, no base64); its format is
        # read from the content, ?filename= names it.
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "video/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "example": "invalid_image"},
            "message": {"type": "string", "example": "a.jpg: truncated or corrupt image"}}}},
    },
    "Base64Images": {
        "type": "object",
        "properties": {
            "image": {"type": "string", "description": "base64 image; a data: URL prefix is allowed"},
            "images": {"type": "array", "items": {"type": "string"}},
            "filename": {"type": "string"},
            "explain": {"type": "boolean"},
        },
    },
    "Box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
            "description": "[x, y, width, height] in the original (EXIF-upright) image"},
    "Result": {
        "type": "object",
        "required": ["filename", "label", "fake_probability", "threshold", "model_version", "backend", "width",
                     "height", "scored_region", "faces", "timings_ms"],
        "properties": {
            "filename": {"type": "string"},
            "kind": {"type": "string", "enum": ["image"]},
            "label": {"type": "string", "enum": ["fake", "real"]},
            "fake_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "threshold": {"type": "number"},
            "model_version": {"type": "string"},
            "backend": {"type": "string"},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "scored_region": {"type": "string", "enum": ["whole_image", "center", "face", "faces"]},
            "note": {"type": "string", "description": "present when the face detector found no face"},
            "faces": {"type": "array", "items": {"type": "object", "properties": {
                "box": {"$ref": "#/components/schemas/Box"}, "score": {"type": "number", "nullable": True},
                "landmarks": {"type": "object", "nullable": True, "description": "right_eye, left_eye, "
                              "nose_tip, mouth_center, right_ear, left_ear (the subject's): [x, y] in pixels",
                              "additionalProperties": {"type": "array", "items": {"type": "number"}}},
                "fake_probability": {"type": "number"}, "label": {"type": "string"}}}},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            "heatmap": {"type": "object", "description": "only with explain=true", "properties": {
                "method": {"type": "string", "enum": ["grad-cam", "occlusion"]},
                "box": {"$ref": "#/components/schemas/Box"},
                "png": {"type": "string", "description": "data:image/png;base64 RGBA overlay for box"}}},
        },
    },
    "VideoResult": {
        "type": "object",
        "description": "one video: its frames sampled (serve.video_frames or video_fps), each scored as an image "
                       "(the followed face, or the whole frame), and their scores aggregated by "
                       "serve.video_aggregation (auto: the rule and threshold chosen on validation videos, from the "
                       "model card; else mean at the image threshold)",
        "required": ["filename", "kind", "label", "fake_probability", "threshold", "aggregation", "frames",
                     "worst_frames", "timings_ms"],
        "properties": {
            "filename": {"type": "string"}, "kind": {"type": "string", "enum": ["video"]},
            "label": {"type": "string", "enum": ["fake", "real"]},
            "fake_probability": {"type": "number", "minimum": 0, "maximum": 1,
                                 "description": "the video's, by the aggregation rule"},
            "threshold": {"type": "number"}, "model_version": {"type": "string"}, "backend": {"type": "string"},
            "width": {"type": "integer"}, "height": {"type": "integer"},
            "video": {"type": "object", "properties": {
                "container": {"type": "string", "enum": ["mp4", "mov", "webm", "avi"]}, "codec": {"type": "string"},
                "duration_s": {"type": "number", "nullable": True}, "fps": {"type": "number", "nullable": True}}},
            "scored_region": {"type": "string", "enum": ["faces", "whole_frames"]},
            "aggregation": {"type": "object", "properties": {
                "rule": {"type": "string", "enum": list(AGGREGATIONS)},
                "description": {"type": "string", "example": "mean of 16 frames"},
                "frames": {"type": "integer"},
                "source": {"type": "string", "example": "model_card.json video.aggregation",
                           "description": "where the rule came from: the model card (chosen on validation videos), "
                                          "params.yaml serve.video_aggregation, or default (mean)"},
                "threshold_source": {"type": "string", "example": "model_card.json video.threshold",
                                     "description": "where the threshold the video is judged at came from"}}},
            "frames_with_face": {"type": "integer"},
            "frames": {"type": "array", "items": {"$ref": "#/components/schemas/FrameScore"}},
            "worst_frames": {"type": "array", "description": "the most fake frames, most fake first; with "
                             "explain=true each has a thumbnail (data:image/jpeg;base64)",
                             "items": {"$ref": "#/components/schemas/FrameScore"}},
            "note": {"type": "string", "description": "present when the face detector found no face in any frame"},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "FrameScore": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"}, "timestamp_s": {"type": "number"},
            "fake_probability": {"type": "number"}, "label": {"type": "string", "enum": ["fake", "real"]},
            "face": {"type": "object", "nullable": True, "properties": {
                "box": {"$ref": "#/components/schemas/Box"}, "score": {"type": "number"}}},
            "region": {"$ref": "#/components/schemas/Box"},
            "thumbnail": {"type": "string", "description": "worst frames, explain=true only"}},
    },
    "Prediction": {
        "type": "object",
        "properties": {"model_version": {"type": "string"}, "backend": {"type": "string"},
                       "variant": {"type": "string"}, "threshold": {"type": "number"},
                       "notice": {"$ref": "#/components/schemas/Notice"},
                       "results": {"type": "array", "items": {"oneOf": [
                           {"$ref": "#/components/schemas/Result"}, {"$ref": "#/components/schemas/VideoResult"}]}}},
    },
    "ModelInfo": {
        "type": "object",
        "description": "the served model; metrics come only from an evaluation of this very model",
        "properties": {
            "model_version": {"type": "string"}, "backend": {"type": "string"},
            "variant": {"type": "string", "example": "int8_full",
                        "description": "the export that answers (keras when the Keras backend serves)"},
            "variant_choice": {
                "type": "object", "nullable": True,
                "description": "how the TFLite variant was chosen (null when the Keras backend serves)",
                "properties": {
                    "mode": {"type": "string", "enum": ["auto", "configured"],
                             "description": "auto: serve.variant is auto; configured: a variant named in params"},
                    "reason": {"type": "string",
                               "example": "fastest on this CPU of the exports that passed the AUC gate (float32, "
                                          "int8_full), batch-1 p50 measured at load"},
                    "p50_ms": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"},
                               "description": "batch-1 latency of each gated export, measured by this worker at "
                                              "load; null when nothing was measured (configured, one gated "
                                              "export, or a card that predates the gate)",
                               "example": {"float32": 7.7, "int8_full": 4.0}}}},
            "threshold": {"type": "number"},
            "threshold_source": {"type": "string", "example": "model_card.json"},
            "temperature": {"type": "number"},
            "test_metrics": {"type": "object", "nullable": True},
            "test_metrics_source": {"type": "string", "nullable": True, "example": "model_card.json"},
            "note": {"type": "string", "nullable": True,
                     "description": "set when no evaluation matches the served model"},
            "notice": {"$ref": "#/components/schemas/Notice"},
            "training_data": {"type": "string", "example": "demo, 840 images (train 600, val 120, test 120)",
                              "description": "the data source (credentials removed) and its size, for people"},
            "dataset": {"type": "object", "nullable": True,
                        "description": "the model card's dataset block: source (credentials removed), images, "
                                       "images_per_split, manifest_sha256"},
            "video": {
                "type": "object", "description": "how a video's frame scores become its verdict in this process",
                "properties": {
                    "aggregation": {"type": "string", "enum": list(AGGREGATIONS)},
                    "aggregation_source": {"type": "string", "example": "model_card.json video.aggregation"},
                    "threshold": {"type": "number"},
                    "threshold_source": {"type": "string", "example": "model_card.json video.threshold"},
                    "chosen_on": {"type": "string", "nullable": True, "example": "val videos"},
                    "val_roc_auc": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"},
                                    "description": "each rule's ROC AUC on the validation videos (card only)"}}},
        },
    },
    "Notice": {"type": "string", "nullable": True,
               "description": "set when the model was trained on the synthetic demo set: its verdicts on real "
                              "photographs mean nothing"},
    "TrainingJob": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "status": {"type": "string",
                                                             "enum": ["running", "succeeded", "failed"]},
                       "command": {"type": "array", "items": {"type": "string"}},
                       "returncode": {"type": "integer", "nullable": True},
                       "started": {"type": "string"}, "finished": {"type": "string", "nullable": True}},
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "deepfake-detector", "version": __version__,
                 "description": "Scores face images for signs of GAN synthesis: P(fake) and a label."},
        "paths": {
            "/": {"get": {"summary": "The web page", "responses": {"200": {"description": "HTML"}}}},
            "/healthz": {"get": {"summary": "The process is up",
                                 "responses": {"200": _json("up", {"type": "object"})}}},
            "/readyz": {"get": {"summary": "A model is loaded and warmed up",
                                "responses": {"200": _json("ready", {"type": "object"}),
                                              "503": _error("not ready, with the reason")}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics of every worker (docs/export-and-serving.md#metrics)",
                "responses": {"200": {"description": "the Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "401": _error("DEEPFAKE_DETECTOR_METRICS_TOKEN is set and no bearer token was sent"),
                              "403": _error("a wrong token, or (no token set) a client other than loopback"),
                              "503": _error("metrics_unavailable: the metrics cannot be collected now")}}},
            "/api/v1/model": {"get": {
                "summary": "What model answers: version, backend, threshold, test metrics",
                "responses": {"200": _json("model metadata", {"$ref": "#/components/schemas/ModelInfo"}),
                              "503": _error("model_not_ready")}}},
            "/api/v1/predict": {"post": {
                "summary": "Score one or more images",
                "parameters": [{"name": "explain", "in": "query", "schema": {"type": "boolean"},
                                "description": "also compute a heatmap (slower)"},
                               {"name": "filename", "in": "query", "schema": {"type": "string"},
                                "description": "the name a raw-body image is answered under (default: image)"}],
                "requestBody": _IMAGE_BODY,
                "responses": {"200": _json("one result per image", {"$ref": "#/components/schemas/Prediction"}),
                              **_BAD_INPUT}}},
            "/predict": {"post": {
                "summary": "Original contract: JSON {\"image\": base64} in, [{image, confidence}] out",
                "description": "confidence is 50 % at the decision threshold and 100 % at P(fake) 0 or 1, "
                               "linear on each side (at threshold 0.5: the probability of the class named)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Base64Images"}}}},
                "responses": {"200": _json("verdict per image", {"type": "array", "items": {
                    "type": "object", "properties": {"image": {"type": "string", "enum": ["Real", "Fake"]},
                                                     "confidence": {"type": "string", "example": "93.00%"}}}}),
                              **_BAD_INPUT}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document",
                                             "responses": {"200": _json("OpenAPI 3", {"type": "object"})}}},
            "/api/v1/train": {"post": {
                "summary": "Run the training pipeline in the background (404 unless serve.training_enabled)",
                "security": [{"bearer": []}],
                "responses": {"202": _json("started", {"$ref": "#/components/schemas/TrainingJob"}),
                              "401": _error("missing or wrong bearer token"), "404": _error("training disabled"),
                              "409": _error("a training run is already in progress"),
                              "503": _error("enabled but DEEPFAKE_DETECTOR_TRAIN_TOKEN is not set")}}},
            "/api/v1/train/{job_id}": {"get": {
                "summary": "Status of a training run",
                "security": [{"bearer": []}],
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("status", {"$ref": "#/components/schemas/TrainingJob"}),
                              "401": _error("missing or wrong bearer token"), "404": _error("no such run")}}},
            "/static/{filename}": {"get": {
                "summary": "Files of the web page",
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file"}, "404": _error("no such file")}}},
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
