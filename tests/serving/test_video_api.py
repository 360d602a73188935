"""Videos through POST /api/v1/predict: told apart from images by their content, sampled, each frame scored as an
image would be (the followed face, or the whole frame), aggregated by the served rule; every bad video is a 4xx
naming what is wrong, never a 500."""
import io

import av
import numpy as np
import pytest

from deepfake_detector.components.data.demo_video import render_demo_video
from deepfake_detector.config.entities import DemoDataConfig
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.video.verdict import aggregate

SIDE = 160
FRAMES = 6


def clip(label: int = FAKE, index: int = 1, seconds: float = 2.0, container: str = "mp4") -> bytes:
    return render_demo_video(DemoDataConfig(image_size=SIDE), label, index, seconds=seconds, fps=8, size=SIDE,
                             container=container, bitrate=600_000)


def blank_clip(seconds: float = 1.0) -> bytes:
    """A gray clip without a face."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = SIDE, SIDE, "yuv420p"
        for number in range(round(8 * seconds)):
            frame = av.VideoFrame.from_ndarray(np.full((SIDE, SIDE, 3), 100 + number, np.uint8), format="rgb24")
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fake_clip() -> bytes:
    return clip(FAKE)


@pytest.fixture(scope="module")
def client(make_app):
    return make_app(load_model=True, video_frames=FRAMES).test_client()


@pytest.fixture(scope="module")
def face_client(make_app):
    return make_app(load_model=True, face_detector="blazeface", face_min_size=16, video_frames=FRAMES,
                    video_aggregation="top_k_mean").test_client()


def post_file(client, data: bytes, name: str = "clip.mp4", query: str = ""):
    return client.post("/api/v1/predict" + query, data={"file": (io.BytesIO(data), name)})


def test_a_video_gets_a_verdict_a_timeline_and_the_rule_that_made_it(client, fake_clip):
    response = post_file(client, fake_clip)
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    result = response.get_json()["results"][0]
    assert result["kind"] == "video" and result["video"]["container"] == "mp4"
    assert result["video"]["codec"] == "h264" and result["video"]["duration_s"] == pytest.approx(2.0, abs=0.2)
    frames = result["frames"]
    assert len(frames) == FRAMES == result["aggregation"]["frames"]
    times = [frame["timestamp_s"] for frame in frames]
    assert times == sorted(times) and times[0] < 0.4 and times[-1] > 1.5  # spread over the clip
    probabilities = [frame["fake_probability"] for frame in frames]
    assert len(set(probabilities)) > 1  # each frame is scored on its own
    assert result["aggregation"]["rule"] == "mean"
    assert result["fake_probability"] == pytest.approx(aggregate(probabilities, "mean"))
    assert result["label"] == ("fake" if result["fake_probability"] >= result["threshold"] else "real")
    assert result["scored_region"] == "whole_frames" and result["frames_with_face"] == 0
    worst = result["worst_frames"]
    assert [frame["fake_probability"] for frame in worst] == sorted(probabilities, reverse=True)[:3]
    assert "thumbnail" not in worst[0]
    assert {"decode", "predict", "total"} <= set(result["timings_ms"])


def test_the_content_decides_not_the_name_or_the_content_type(client, fake_clip):
    named_as_photo = post_file(client, fake_clip, name="holiday.jpg")
    assert named_as_photo.status_code == 200 and named_as_photo.get_json()["results"][0]["kind"] == "video"
    raw = client.post("/api/v1/predict?filename=clip.mp4", data=fake_clip, content_type="video/mp4")
    assert raw.status_code == 200 and raw.get_json()["results"][0]["kind"] == "video"
    image = client.post("/api/v1/predict", data=clip_frame_png(), content_type="application/octet-stream")
    assert image.status_code == 200 and image.get_json()["results"][0]["kind"] == "image"


def clip_frame_png() -> bytes:
    from tests.serving import sample_images

    return sample_images.png(96, 96)


@pytest.mark.parametrize("container", ["mov", "webm", "avi"])
def test_other_containers_are_scored_too(client, container):
    response = post_file(client, clip(REAL, 2, seconds=1.0, container=container), name=f"clip.{container}")
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    result = response.get_json()["results"][0]
    assert result["video"]["container"] == container and len(result["frames"]) >= 4


def test_faces_are_followed_and_the_worst_frames_come_with_thumbnails(face_client, fake_clip):
    response = post_file(face_client, fake_clip, query="?explain=true")
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    result = response.get_json()["results"][0]
    assert result["scored_region"] == "faces" and result["frames_with_face"] >= FRAMES - 1
    for frame in result["frames"]:
        if frame["face"] is not None:
            x, y, w, h = frame["face"]["box"]
            assert 0 <= x and 0 <= y and x + w <= SIDE and y + h <= SIDE and 16 <= max(w, h) < SIDE
    assert result["aggregation"]["rule"] == "top_k_mean"
    assert result["aggregation"]["description"] == f"mean of the 2 most fake of {FRAMES} frames (top 25%)"
    probabilities = [frame["fake_probability"] for frame in result["frames"]]
    assert result["fake_probability"] == pytest.approx(np.mean(sorted(probabilities)[-2:]))
    assert all(frame["thumbnail"].startswith("data:image/jpeg;base64,") for frame in result["worst_frames"])


def test_a_video_without_a_face_says_so(face_client):
    response = post_file(face_client, blank_clip())
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    result = response.get_json()["results"][0]
    assert result["frames_with_face"] == 0 and result["note"].startswith("no face found in any frame")


def test_every_bad_video_is_a_4xx_naming_the_problem(client, make_app, fake_clip):
    truncated = post_file(client, fake_clip[: len(fake_clip) // 2])
    assert truncated.status_code == 400 and truncated.get_json()["error"]["code"] == "invalid_video"
    assert "clip.mp4" in truncated.get_json()["error"]["message"]
    garbage_after_header = post_file(client, fake_clip[:32] + bytes(range(256)) * 40)
    assert garbage_after_header.status_code == 400
    assert garbage_after_header.get_json()["error"]["code"] == "invalid_video"
    two = client.post("/api/v1/predict", data={"file": [(io.BytesIO(fake_clip), "a.mp4"),
                                                        (io.BytesIO(fake_clip), "b.mp4")]})
    assert two.status_code == 413 and two.get_json()["error"]["code"] == "too_many_videos"

    too_long = post_file(make_app(load_model=True, video_max_duration_s=1.0).test_client(), fake_clip)
    assert too_long.status_code == 413 and too_long.get_json()["error"]["code"] == "video_too_large"
    too_big = post_file(make_app(load_model=True, video_max_frame_pixels=128 * 128).test_client(), fake_clip)
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "video_too_large"
    too_many_frames = post_file(make_app(load_model=True, video_max_frames_decoded=4).test_client(), fake_clip)
    assert too_many_frames.status_code == 413 and too_many_frames.get_json()["error"]["code"] == "video_too_large"


def test_a_video_is_refused_by_the_legacy_route_as_not_an_image(client, fake_clip):
    response = client.post("/predict", data={"file": (io.BytesIO(fake_clip), "clip.mp4")})
    assert 400 <= response.status_code < 500
