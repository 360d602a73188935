"""requirements-serve.txt, what the image installs: the serving subset of requirements.txt, at the same versions."""
from importlib.metadata import version

from tests.deploy.image_model import REQUIREMENTS, REQUIREMENTS_SERVE, pinned, serving_distributions

HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "mlflow", "dvc", "pandas", "scikit-learn", "matplotlib", "dagshub"}


def test_every_serving_pin_matches_requirements_txt():
    development = pinned(REQUIREMENTS)
    serving = pinned(REQUIREMENTS_SERVE)
    assert {name: development.get(name) for name in serving} == serving


def test_serving_requirements_leave_out_the_training_stack():
    assert not HEAVY & set(pinned(REQUIREMENTS_SERVE))


def test_the_config_models_runtime_is_pinned_for_the_image(tmp_path):
    """Serving reads its config through pydantic: the image gets it, and what it runs on, at the tested versions."""
    alone = tmp_path / "pydantic.txt"
    alone.write_text(f"pydantic=={version('pydantic')}\n", encoding="utf-8")
    needed = serving_distributions(alone)  # pydantic and every distribution it requires
    serving = pinned(REQUIREMENTS_SERVE)
    assert {name: serving.get(name) for name in needed} == {name: version(name) for name in needed}
