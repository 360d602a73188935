"""What a user installs: the Python version setup.py promises is one the pinned stack runs on, and
`pip install -r requirements.txt` installs this project too, so `python app.py` finds it."""
from __future__ import annotations

import ast
import importlib.metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.deploy.image_model import REPO_ROOT, REQUIREMENTS, pinned

SETUP = REPO_ROOT / "setup.py"


def promised_python() -> SpecifierSet:
    """setup.py's python_requires, read without running setup.py."""
    for node in ast.walk(ast.parse(SETUP.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "python_requires":
            return SpecifierSet(node.value.value)
    raise AssertionError("setup.py sets no python_requires")


def oldest_python_of(specifier: SpecifierSet) -> Version:
    """The oldest 3.x release the specifier admits."""
    return next(Version(f"3.{minor}") for minor in range(6, 30) if Version(f"3.{minor}") in specifier)


def test_every_pinned_dependency_runs_on_the_oldest_python_setup_py_promises():
    oldest = oldest_python_of(promised_python())
    refusing = {}
    for name in pinned(REQUIREMENTS):
        required = importlib.metadata.metadata(name).get("Requires-Python")
        if required and oldest not in SpecifierSet(required):
            refusing[name] = required
    assert not refusing, f"setup.py promises Python {oldest}, but these pins refuse it: {refusing}"


def test_requirements_install_the_project_itself():
    lines = [line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    assert "-e ." in lines, "requirements.txt must install this project (`-e .`), or `python app.py` cannot import it"
