"""README's results tables, written from the pipeline outputs that dvc.lock records and checked against them.

`deepfake-detector results` (or `python -m deepfake_detector.results`) rewrites the blocks; `--check`
says whether README still matches the lock. A typed number in README cannot drift from the run it describes.
"""
