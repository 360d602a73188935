"""What the Docker image is made of, read from the Dockerfile, .dockerignore and requirements-serve.txt, so that
tests can run the image's own entry point here and hold its Python environment to the serving dependencies."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
REQUIREMENTS_SERVE = REPO_ROOT / "requirements-serve.txt"
PROJECT_MODULES = frozenset({"deepfake_detector", "app"})  # src/ and app.py, copied into /app
# Loaded by the interpreter itself or by a .pth file of this virtual environment (setuptools), not by the app
INTERPRETER_PLUMBING = frozenset({"__main__", "sitecustomize", "cython_runtime", "_distutils_hack"})
# Cython 3 extension modules of scipy.sparse also enter sys.modules under their bare names
CYTHON_BARE_NAMES = frozenset({"_cyutility", "_csparsetools"})


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, ENV, COPY, ...
    arguments: str  # the rest of the (joined) line


def instructions(dockerfile: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return result


def final_stage(dockerfile: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions of the last stage: the image that runs."""
    steps = instructions(dockerfile)
    start = max(index for index, step in enumerate(steps) if step.keyword == "FROM")
    return steps[start:]


def image_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The final stage's ENV values, with $VAR / ${VAR} references to earlier values left for the caller."""
    values: dict[str, str] = {}
    for step in final_stage(dockerfile):
        if step.keyword == "ENV":
            for pair in shlex.split(step.arguments):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def build_args(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """ARG defaults of the final stage."""
    values = {}
    for step in final_stage(dockerfile):
        if step.keyword == "ARG":
            key, _, default = step.arguments.partition("=")
            values[key] = default
    return values


def exec_form(step: Instruction) -> list[str]:
    """The JSON array of a CMD / HEALTHCHECK CMD, whose exact words the container runs."""
    text = step.arguments
    if step.keyword == "HEALTHCHECK":
        text = text[text.index("CMD ") + len("CMD "):]
    return json.loads(text)


def single(keyword: str, dockerfile: Path = DOCKERFILE) -> Instruction:
    found = [step for step in final_stage(dockerfile) if step.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def copy_sources(dockerfile: Path = DOCKERFILE) -> list[str]:
    """Build-context paths that COPY instructions read (not --from stages), ARG defaults substituted."""
    args = build_args(dockerfile)
    sources = []
    for step in instructions(dockerfile):
        if step.keyword != "COPY":
            continue
        words = shlex.split(step.arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        words = [word for word in words if not word.startswith("--")]
        for source in words[:-1]:
            sources.append(re.sub(r"\$\{?(\w+)\}?", lambda match: args[match.group(1)], source))
    return sources


def local_environment(env: dict[str, str], base_path: str, mapping: dict[str, Path]) -> dict[str, str]:
    """The image's environment for a run on this machine: image paths (e.g. /app) replaced by their local
    counterparts in every path-list entry, and $PATH expanded to base_path."""
    result = {}
    for key, value in env.items():
        value = value.replace("${PATH}", base_path).replace("$PATH", base_path)
        entries = []
        for entry in value.split(os.pathsep):
            for image_path, local_path in mapping.items():
                if entry == image_path or entry.startswith(image_path + "/"):
                    entry = str(local_path) + entry[len(image_path):]
                    break
            entries.append(entry)
        result[key] = os.pathsep.join(entries)
    return result


# ---- .dockerignore ------------------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern language (Go filepath.Match plus **), anchored at the context root."""
    parts, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line, in order."""
    patterns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        is_exception = line.startswith("!")
        cleaned = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append((is_exception, _pattern_regex(cleaned)))
    return patterns


def is_ignored(relative_path: str, patterns: list[tuple[bool, re.Pattern[str]]] | None = None) -> bool:
    """Whether Docker leaves relative_path out of the build context: the last pattern matching the path or
    one of its parent folders decides, as in moby's patternmatcher."""
    patterns = dockerignore_patterns() if patterns is None else patterns
    parts = relative_path.strip("/").split("/")
    prefixes = ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]
    ignored = False
    for is_exception, regex in patterns:
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not is_exception
    return ignored


# ---- the serving environment ----------------------------------------------------------------------------

def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path) -> dict[str, str]:
    """{normalized name: version} of a requirements file's `name==version` lines."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):  # options such as `-e .` pin nothing
            requirement = Requirement(line)
            pins[normalize(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def serving_distributions(path: Path = REQUIREMENTS_SERVE) -> set[str]:
    """requirements-serve.txt and everything those distributions require (no extras): what pip puts in the image."""
    todo, seen = list(pinned(path)), set()
    while todo:
        name = normalize(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def serving_modules(path: Path = REQUIREMENTS_SERVE) -> frozenset[str]:
    """Top-level import names the image can import beyond the standard library."""
    distributions = serving_distributions(path)
    return frozenset(module for module, owners in importlib.metadata.packages_distributions().items()
                     if any(normalize(owner) in distributions for owner in owners)) | PROJECT_MODULES


SITECUSTOMIZE = '''"""From tests/deploy/image_model.py: imports beyond the serving image's packages fail, as there."""
import importlib.abc
import sys

_ALLOWED = frozenset({allowed!r})


class _ServingImageOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in _ALLOWED or top in sys.stdlib_module_names or top.startswith(("_cython", "_sysconfigdata")):
            return None
        raise ModuleNotFoundError(f"No module named {{top!r}} (not in requirements-serve.txt)", name=fullname)


sys.meta_path.insert(0, _ServingImageOnly())
'''


def write_import_blocker(folder: Path) -> Path:
    """folder/sitecustomize.py that refuses any import outside the standard library, the project and the
    serving distributions; put folder first on PYTHONPATH and every Python process there is held to it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(allowed=sorted(serving_modules())),
                                             encoding="utf-8")
    return folder


def third_party(modules: list[str]) -> set[str]:
    """Top-level names among modules that are neither standard library nor interpreter plumbing."""
    tops = {name.partition(".")[0] for name in modules}
    return {name for name in tops if name not in sys.stdlib_module_names
            and not name.startswith(("_cython", "_sysconfigdata"))
            and name not in INTERPRETER_PLUMBING | CYTHON_BARE_NAMES}
