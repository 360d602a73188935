"""The package's layers, enforced: a module imports only from its own layer or lower ones, and no two
packages import each other. The order is the one docs/architecture.md states."""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "src" / "deepfake_detector"

# Lowest first. A module belongs to the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("deepfake_detector", "deepfake_detector.utils", "deepfake_detector.contracts",
     "deepfake_detector.logging_config"),
    ("deepfake_detector.config",),
    ("deepfake_detector.inference", "deepfake_detector.video"),
    ("deepfake_detector.tracking", "deepfake_detector.components", "deepfake_detector.components.data"),
    ("deepfake_detector.components.model",),
    ("deepfake_detector.components.evaluation",),
    ("deepfake_detector.components.export",),
    ("deepfake_detector.serving", "deepfake_detector.predict_cli", "deepfake_detector.benchmarks",
     "deepfake_detector.deploy", "deepfake_detector.report_screenshot", "deepfake_detector.results",
     "deepfake_detector.experiments"),
    ("deepfake_detector.pipeline",),
    ("deepfake_detector.cli",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group_of(module: str) -> str:
    """The longest layer prefix that module falls under."""
    matches = [prefix for layer in LAYERS for prefix in layer
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=len)


def rank_of(module: str) -> int:
    group = group_of(module)
    return next(rank for rank, layer in enumerate(LAYERS) if group in layer)


def project_imports(path: Path) -> set[str]:
    """Every deepfake_detector module path imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("deepfake_detector")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("deepfake_detector"):
            found.add(node.module)
            # `from package import submodule` imports the submodule.
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if (PACKAGE_ROOT.parent / f"{node.module}.{alias.name}".replace(".", "/")).with_suffix(".py")
                      .is_file() or (PACKAGE_ROOT.parent / f"{node.module}.{alias.name}".replace(".", "/")).is_dir()}
    return found


def all_modules() -> dict[str, set[str]]:
    return {module_name(path): project_imports(path) for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def test_no_module_imports_a_higher_layer():
    upward = [f"{module} (layer {rank_of(module)}) imports {target} (layer {rank_of(target)})"
              for module, targets in all_modules().items() for target in sorted(targets)
              if rank_of(target) > rank_of(module)]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_two_packages_import_each_other():
    edges = defaultdict(set)
    for module, targets in all_modules().items():
        for target in targets:
            source_group, target_group = group_of(module), group_of(target)
            if source_group != target_group and target_group != "deepfake_detector":
                edges[source_group].add(target_group)
    cycles = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
    assert not cycles, "packages that import each other: " + ", ".join(cycles)


def test_every_module_has_a_layer():
    """A new top-level module must be placed in LAYERS (and docs/architecture.md) on purpose."""
    unplaced = [module for module in all_modules() if group_of(module) == "deepfake_detector"
                and module != "deepfake_detector"]
    assert not unplaced, f"modules outside every layer: {unplaced}"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule is live: inference importing a component is caught."""
    fake = tmp_path / "deepfake_detector" / "inference"
    fake.mkdir(parents=True)
    (fake / "sneaky.py").write_text("from deepfake_detector.components.model import factory\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_ROOT", tmp_path / "deepfake_detector")
    imports = project_imports(fake / "sneaky.py")
    assert any(rank_of(target) > rank_of("deepfake_detector.inference.sneaky") for target in imports)
