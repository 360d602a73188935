"""How many repetitions each section runs: the full defaults fit in a few minutes on 2 cores,
`quick` only checks that every section works."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BenchSettings:
    warmup: int = 3  # untimed calls before each timed series (tracing, allocators, caches)
    single_reps: int = 50  # single-image latency samples per runtime
    batch_size: int = 32
    batch_reps: int = 5  # batch calls timed per runtime
    load_reps: int = 3  # "load per request" repetitions: each loads the whole .h5
    preprocess_reps: int = 50
    process_images: int = 20  # predictions made by each serving subprocess
    api_reps: int = 200  # interleaved rounds of the one-client API paths and the bare calls (cheap: ~10 ms each)
    thread_clients: int = 4
    thread_requests: int = 25  # single-image requests per client thread
    throughput_runs: int = 3  # full-stack throughput runs per request body (the median is reported)
    full_stack_requests: int = 60  # single-image requests per client in each full-stack throughput run
    bare_burst_reps: int = 60  # bare calls timed just before each full-stack throughput run (its target)
    face_reps: int = 100  # face detection + crop calls timed per detector and crop way
    face_demo_scenes: int = 20  # demo scenes per demo style the detectors look for faces in
    video_seconds: float = 10.0  # the timed clip's length (a second clip is 6 times longer: memory only)
    video_height: int = 720  # its frame height (16:9)
    video_reps: int = 3  # requests timed per clip and face setting
    train_warmup_steps: int = 2  # per phase and feed, not timed (the first also fills the shuffle buffer)
    train_steps: int = 10  # timed per phase and feed
    train_batch_size: int | None = None  # None: train.batch_size from params.yaml

    @classmethod
    def quick(cls) -> BenchSettings:
        """Tiny counts for tests: every code path runs once or twice, timings mean nothing."""
        return cls(warmup=1, single_reps=3, batch_size=8, batch_reps=1, load_reps=1, preprocess_reps=3,
                   process_images=2, api_reps=3, thread_clients=2, thread_requests=2, throughput_runs=1,
                   full_stack_requests=2, bare_burst_reps=2, face_reps=2, face_demo_scenes=1,
                   video_seconds=1.0, video_height=180, video_reps=1,
                   train_warmup_steps=1, train_steps=2)

    def to_dict(self) -> dict:
        return asdict(self)
