"""The package's layout: imports run one way, from the app and the command line down to audio and
config, and only the app's glue (ser.app) imports Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# Each sub-package's floor, from the bottom up; a module imports only from its own floor or below.
FLOORS = {
    "config": 0, "errors": 0, "units": 0, "process": 0, "__init__": 0, "__main__": 9,
    "voice": 1, "audio": 2, "corpora": 2, "features": 3, "store": 4, "models": 5, "viz": 6, "serving": 6,
    "training": 7, "cli": 8, "app": 8,
}  # fmt: skip
STREAMLIT = ("streamlit", "streamlit_webrtc")


def _modules() -> list[Path]:
    return sorted((ROOT / "ser").rglob("*.py"))


def _package(path: Path) -> str:
    return path.relative_to(ROOT / "ser").with_suffix("").parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of ``path`` that runs (those under ``if TYPE_CHECKING`` do not)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}" if node.module == "ser" else node.module)
                      for alias in node.names]  # fmt: skip
    return found


def test_every_module_of_ser_has_a_floor():
    assert {_package(path) for path in _modules()} <= set(FLOORS)


def test_no_import_runs_back_up():
    upward = []
    for path in _modules():
        floor = FLOORS[_package(path)]
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "ser" and len(parts) > 1 and FLOORS.get(parts[1], 0) > floor:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward, upward


def test_only_the_app_glue_imports_streamlit():
    outside = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _modules()
        if _package(path) != "app"
        for line, module in _imports(path)
        if module.split(".")[0] in STREAMLIT
    ]
    assert not outside, outside
    assert any(module == "streamlit" for path in _modules() if _package(path) == "app" for _, module in _imports(path))
