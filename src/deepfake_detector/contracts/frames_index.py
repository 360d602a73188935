"""The columns the frames stage adds to ingest's index, read by validate (and `video` kept in the manifest)."""
VIDEO_COLUMN = "video"      # a frame's video, its path under the ingested dataset; "" for a still image
TIME_COLUMN = "time_s"      # the frame's time in its video, in seconds
PROBLEM_COLUMN = "problem"  # why a video gave no frames; validate quarantines the row with this reason
