"""The documents stay what they promise: README.md's model table is the active card's, and the
READMEs keep to their length."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script():
    """bench/readme_table.py, imported from its path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "bench" / "readme_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_table = load_script()


def test_the_readme_table_is_the_active_cards():
    block = readme_table.readme_block((ROOT / "README.md").read_text())
    assert block == readme_table.model_table(ROOT / "models"), "run: python bench/readme_table.py --write"


def test_the_table_names_the_active_model_and_its_metric():
    name, card = readme_table.read_active(ROOT / "models")
    table = readme_table.model_table(ROOT / "models")
    assert f"`{name}`" in table
    assert "UAR" in table and "zero-shot" in table
    if any("per_speaker" in p for p in card["evaluation"].values()):
        assert "per speaker" in table


def test_writing_the_table_replaces_only_the_block():
    text = f"# Title\n\nbefore\n{readme_table.START}\nold figures\n{readme_table.END}\nafter\n"
    written = readme_table.replace_block(text, "new table")
    assert written == f"# Title\n\nbefore\n{readme_table.START}\nnew table\n{readme_table.END}\nafter\n"
    assert readme_table.readme_block(written) == "new table"
    with pytest.raises(ValueError, match="markers"):
        readme_table.replace_block("no markers here", "new table")


@pytest.mark.parametrize(("path", "most"), [("README.md", 200), ("bench/README.md", 150)])
def test_readmes_stay_short(path, most):
    n_lines = len((ROOT / path).read_text().splitlines())
    assert n_lines <= most, f"{path} has {n_lines} lines; at most {most} (the depth goes to docs/)"
