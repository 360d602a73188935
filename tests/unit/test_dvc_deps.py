"""dvc.yaml's code deps are each stage's real import closure, so DVC reruns a stage exactly when code it runs changes.

The closure is read from the source (AST): every `deepfake_detector.*` import of the stage's entry module,
followed transitively, imports inside functions included, with the `__init__.py` of every package on the way.
A directory dep covers everything below it. To print the deps every stage should list (paste them into
dvc.yaml):

    python -m tests.unit.test_dvc_deps
"""
from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = "deepfake_detector"
PACKAGE_DIR = SRC / PACKAGE
PKG_VAR = "${pkg}"  # dvc.yaml: vars: [{pkg: src/deepfake_detector}]
PRINT_COMMAND = "python -m tests.unit.test_dvc_deps (--write to update dvc.yaml)"


def module_file(name: str) -> Path | None:
    """The file a dotted module name imports from, or None when it is not a module of the project."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> Iterator[str]:
    """Every dotted name an import statement in path may load: `from a import b` gives a and a.b."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def import_closure(entry: str) -> frozenset[Path]:
    """The project files `python -m entry` executes: modules, their imports, and their packages' __init__.py."""
    todo, seen = [entry], set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            path = module_file(".".join(parts[:depth]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(imported_names(path))
    return frozenset(seen)


def stages(dvc_file: Path = REPO / "dvc.yaml") -> dict[str, dict]:
    return yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"]


def entry_module(stage: dict) -> str:
    words = stage["cmd"].split()
    return words[words.index("-m") + 1]


def is_code(dep: str) -> bool:
    """A dep on the package's Python code: a module or a package folder under ${pkg}/ (not a template)."""
    path = PACKAGE_DIR / dep.removeprefix(PKG_VAR + "/")
    return dep.startswith(PKG_VAR + "/") and (path.suffix == ".py" or (path / "__init__.py").is_file())


def code_deps(stage: dict) -> list[Path]:
    """The stage's code deps, as paths; artifacts, params files and package data are not judged here."""
    return [PACKAGE_DIR / dep.removeprefix(PKG_VAR + "/") for dep in stage.get("deps", []) if is_code(dep)]


def as_dep(path: Path) -> str:
    return f"{PKG_VAR}/{path.relative_to(PACKAGE_DIR).as_posix()}"


def drift(stage: dict) -> tuple[list[str], list[str]]:
    """(closure files no dep covers, deps that cover no closure file)."""
    closure, deps = import_closure(entry_module(stage)), code_deps(stage)
    missing = sorted(as_dep(path) for path in closure if not any(path.is_relative_to(dep) for dep in deps))
    extra = [as_dep(dep) for dep in deps if not any(path.is_relative_to(dep) for path in closure)]
    return missing, extra


def suggested_deps(closure: frozenset[Path], folder: Path = PACKAGE_DIR) -> list[str]:
    """closure as deps: a whole folder where the stage runs more than half of its modules, else the files."""
    modules = sorted(folder.rglob("*.py"))
    used = [path for path in modules if path in closure]
    if folder != PACKAGE_DIR and len(used) >= 2 and 2 * len(used) > len(modules):
        return [as_dep(folder)]
    deps = [as_dep(path) for path in sorted(folder.glob("*.py")) if path in closure]
    for child in sorted(path for path in folder.iterdir() if path.is_dir() and (path / "__init__.py").is_file()):
        deps.extend(suggested_deps(closure, child))
    return deps


@pytest.mark.parametrize("name", list(stages()))
def test_stage_code_deps_are_its_import_closure(name: str) -> None:
    missing, extra = drift(stages()[name])
    assert not missing and not extra, (
        f"dvc.yaml stage {name!r}: code deps differ from what `python -m {entry_module(stages()[name])}` imports\n"
        f"  missing (imported, no dep covers it): {missing}\n"
        f"  extra (listed, never imported): {extra}\n"
        f"  print every stage's deps with: {PRINT_COMMAND}")


def test_closure_follows_imports_inside_functions() -> None:
    # pipeline/ingest.py imports its component inside run(): a module-level scan would miss it.
    closure = import_closure(f"{PACKAGE}.pipeline.ingest")
    assert PACKAGE_DIR / "components" / "data" / "ingestion.py" in closure
    assert {PACKAGE_DIR / "__init__.py", PACKAGE_DIR / "pipeline" / "__init__.py"} <= closure


def expected_deps() -> dict[str, list[str]]:
    """Each stage's deps as dvc.yaml should list them: the import closure, then its other deps as they are."""
    return {name: [*suggested_deps(import_closure(entry_module(stage))),
                   *(dep for dep in stage.get("deps", []) if not is_code(dep))]
            for name, stage in stages().items()}


def rewrite_deps(text: str, deps: dict[str, list[str]]) -> str:
    """dvc.yaml's text with each stage's `deps:` list replaced, comments and everything else kept."""
    lines, out, stage, index = text.splitlines(keepends=True), [], None, 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            stage = line.strip()[:-1]
        out.append(line)
        index += 1
        if stage in deps and line.rstrip() == "    deps:":
            while index < len(lines) and lines[index].lstrip().startswith(("- ", "#")) \
                    and lines[index].startswith("      "):
                index += 1
            out.extend(f"      - {dep}\n" for dep in deps[stage])
    return "".join(out)


def test_rewriting_keeps_what_is_not_a_dep() -> None:
    text = "stages:\n  train:\n    cmd: x\n    deps:\n      - old.py\n      - data\n    params:\n      - train\n"
    assert rewrite_deps(text, {"train": ["new.py", "data"]}) == (
        "stages:\n  train:\n    cmd: x\n    deps:\n      - new.py\n      - data\n    params:\n      - train\n")


def main(argv: list[str] | None = None) -> int:
    """Print each stage's deps; with --write, put them into dvc.yaml."""
    deps = expected_deps()
    if "--write" in (sys.argv[1:] if argv is None else argv):
        dvc_file = REPO / "dvc.yaml"
        dvc_file.write_text(rewrite_deps(dvc_file.read_text(encoding="utf-8"), deps), encoding="utf-8")
        print(f"wrote the code deps of {len(deps)} stages into {dvc_file}")
        return 0
    for name, stage_deps in deps.items():
        print(f"  {name}:\n    deps:")
        for dep in stage_deps:
            print(f"      - {dep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
