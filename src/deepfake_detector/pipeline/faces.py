"""Stage `faces`: a face crop for every validated image, cut as serving cuts uploads (data.faces)."""
from deepfake_detector.pipeline.runner import StageContext, stage_main


def run(context: StageContext) -> None:
    from deepfake_detector.components.data.faces import FaceCropping

    config = context.config.get_faces_config()
    with context.tracker.run("faces", tags={"stage": "faces"}) as tracker:
        tracker.log_params({"faces": context.params("data")["data"]["faces"]})
        result = FaceCropping(config).run()
        if config.faces.enabled:
            tracker.log_metrics({"face_detection_rate": result.detection_rate, "n_face_crops": result.n_kept})
            tracker.log_artifact(result.report_file, artifact_path="data")


if __name__ == "__main__":
    stage_main("faces", run)
