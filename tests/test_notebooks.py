"""The teaching notebooks: committed with their outputs (figures), small, and they still run top to bottom."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from notebooks.regenerate import MAX_NOTEBOOK_BYTES, execute

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(notebook)
               if o.output_type in ("display_data", "execute_result"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_its_figures(path):
    """What a student browsing the repository sees: every cell ran, in order, without errors, and drew figures."""
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{path.name} is over 2 MB"
    notebook = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: run it with notebooks/regenerate.py"
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    assert _images(notebook) >= 2, f"{path.name} should show its results as figures"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_NB_ITERATIONS", os.environ.get("ZOO_NB_ITERATIONS", "30"))
    notebook = execute(path, tmp_path, timeout=600)
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    assert _images(notebook) >= 2, "the notebook should show figures"
