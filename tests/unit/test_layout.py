"""The layout keeps its promises: the domain package imports no orchestration, and only the
settings module touches the process environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "dimflow"
MODULES = sorted(DOMAIN.rglob("*.py"))
ORCHESTRATION = ("prefect", "prefect_ray", "flows", "tasks", "blocks", "deployments", "cli")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(DOMAIN)) for p in MODULES])
def test_domain_modules_import_no_orchestration(path: Path) -> None:
    assert not _imports(path) & set(ORCHESTRATION)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(DOMAIN)) for p in MODULES])
def test_only_settings_touches_the_environment(path: Path) -> None:
    if path.name == "settings.py":
        return
    tree = ast.parse(path.read_text(), str(path))
    touched = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")]
    assert not touched, f"{path.name} reads or writes os.environ at lines {touched}; use dimflow.settings"


def test_no_module_shadows_the_standard_library() -> None:
    import sys

    shadowing = [p for p in MODULES if p.stem in sys.stdlib_module_names]
    assert not shadowing
