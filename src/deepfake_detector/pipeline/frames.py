"""Stage `frames`: every video of the dataset becomes its sampled frames; still images pass as they are."""
from deepfake_detector.pipeline.runner import StageContext, stage_main


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.frames import FrameExtraction

    config = context.config.get_frames_config()
    with context.tracker.run("frames", tags={"stage": "frames"}) as tracker:
        tracker.log_params({"video": context.params("data")["data"]["video"]})
        result = FrameExtraction(config).run()
        tracker.log_metrics({"n_videos": result.n_videos, "n_frames": result.n_frames,
                             "n_videos_left_out": result.n_left_out, "n_stills": result.n_stills})
        if result.n_videos or result.n_left_out:
            tracker.log_artifact(result.report_file, artifact_path="data")


if __name__ == "__main__":
    stage_main("frames", run)
