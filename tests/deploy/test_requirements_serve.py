"""requirements-serve.txt, what the image installs: the serving subset of requirements.txt, at the same versions."""
from tests.deploy.image_model import REQUIREMENTS, REQUIREMENTS_SERVE, pinned

HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "mlflow", "dvc", "pandas", "scikit-learn", "matplotlib", "dagshub"}


def test_every_serving_pin_matches_requirements_txt():
    development = pinned(REQUIREMENTS)
    serving = pinned(REQUIREMENTS_SERVE)
    assert {name: development.get(name) for name in serving} == serving


def test_serving_requirements_leave_out_the_training_stack():
    assert not HEAVY & set(pinned(REQUIREMENTS_SERVE))
