"""Installs the deepfake_detector package and its `deepfake-detector` command."""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="deepfake-detector",
    version="0.1.0",
    description="Reproducible MLOps pipeline for a lightweight deepfake-face detector",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    package_dir={"": "src"},
    packages=find_packages(where="src"),
    # Non-Python files a package reads at run time, so they install with it.
    package_data={"deepfake_detector.components.evaluation": ["templates/*.html.j2"]},
    python_requires=">=3.11",
    entry_points={"console_scripts": ["deepfake-detector=deepfake_detector.cli:main"]},
)
