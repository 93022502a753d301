"""The package's layers: nothing imports up.

``paths`` < ``worldmodels`` < ``envs`` < ``wrappers``, ``agents`` < ``training`` < ``benchmarks`` < ``cli``
(docs/design.md says why). Every ``import`` counts, also the lazy ones inside functions: a lazy import up
the order is still a cycle between concepts, only one that fails later.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layer of each top-level part of the package; parts on one layer do not import each other.
LAYERS = {"paths": 0, "worldmodels": 1, "envs": 2, "wrappers": 3, "agents": 3, "training": 4, "benchmarks": 5,
          "cli": 6}
#: ``import wmgym`` runs registration (envs), so it counts as an import of envs.
ROOT_PACKAGE_LAYER = LAYERS["envs"]


def _part(module_path: Path) -> str:
    rel = module_path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imported_parts(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, part)`` of every ``wmgym.<part>`` import in a module (``""`` for ``import wmgym``)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "wmgym" else [f"wmgym.{a.name}" for a in node.names]
        for name in names:
            if name == "wmgym":
                out.append((node.lineno, ""))
            elif name.startswith("wmgym."):
                out.append((node.lineno, name.split(".")[1]))
    return out


def package_modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if p.relative_to(ROOT).parts[0] not in {"tests", "docs", "results", "build"}
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
                  and p.name != "setup.py")


def judge(part: str, source: str, name: str = "<module>") -> list[str]:
    """The imports in ``source`` that run up the layers, for a module of top-level ``part``."""
    found = []
    for line, target in _imported_parts(ast.parse(source, name)):
        if target == part:
            continue
        layer = ROOT_PACKAGE_LAYER if target == "" else LAYERS.get(target)
        if layer is None:
            found.append(f"{name}:{line} imports wmgym.{target}, which has no layer")
        elif layer >= LAYERS[part] and not (target == "" and LAYERS[part] > ROOT_PACKAGE_LAYER):
            found.append(f"{name}:{line}: {part} (layer {LAYERS[part]}) imports "
                         f"wmgym{'.' + target if target else ''} (layer {layer})")
    return found


def violations(modules: list[Path]) -> list[str]:
    found = []
    for path in modules:
        part, name = _part(path), str(path.relative_to(ROOT))
        if part == "__init__":  # the package root: registration only
            continue
        if part not in LAYERS:
            found.append(f"{name}: top-level part {part!r} has no layer in tests/test_layers.py")
            continue
        found += judge(part, path.read_text(), name)
    return found


def test_every_top_level_part_has_a_layer():
    parts = {_part(p) for p in package_modules()} - {"__init__"}
    assert parts <= set(LAYERS), f"give these a layer: {sorted(parts - set(LAYERS))}"


def test_nothing_imports_up_the_layers():
    found = violations(package_modules())
    assert not found, "imports that run up the layers:\n" + "\n".join(found)


@pytest.mark.parametrize("source, part, expect", [
    ("from wmgym.training.sft import train\n", "worldmodels", True),       # up, at top level
    ("def f():\n    from wmgym.benchmarks import x\n", "training", True),  # up, lazily
    ("import wmgym.agents\n", "wrappers", True),                           # sideways, same layer
    ("import wmgym\n", "worldmodels", True),                               # registration is envs
    ("from wmgym import envs\n", "paths", True),
    ("from wmgym.envs import base\n", "training", False),                  # down
    ("import wmgym\n", "training", False),
    ("from wmgym.worldmodels import protocol\n", "worldmodels", False),    # within
])
def test_the_check_catches_imports_up(source, part, expect):
    assert bool(judge(part, source)) is expect
