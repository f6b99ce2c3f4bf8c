"""Execute the teaching notebooks and store them with their outputs (figures included), as they are committed.

    python notebooks/regenerate.py                     # every notebook
    python notebooks/regenerate.py 03_srgan 05_lomit_masks

Each notebook runs top to bottom in a fresh kernel, in a temporary working folder (nothing is written into the
repository but the notebook itself); execution timings are dropped from the metadata so that a rerun changes only
what really changed. The test suite checks that every committed notebook has image outputs, no errors and stays
under :data:`MAX_NOTEBOOK_BYTES`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent
MAX_NOTEBOOK_BYTES = 2_000_000


def execute(path: Path, workdir: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed in a fresh ``python3`` kernel with ``workdir`` as its working folder."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    for cell in notebook.cells:
        cell.get("metadata", {}).pop("execution", None)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    args = parser.parse_args(argv)
    paths = [NOTEBOOK_DIR / f"{name.removesuffix('.ipynb')}.ipynb" for name in args.names] or \
        sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    for path in paths:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, Path(workdir))
        nbformat.write(notebook, path)
        size = path.stat().st_size
        print(f"{path.name}: {time.perf_counter() - start:.0f} s, {size / 1e6:.2f} MB", flush=True)
        if size > MAX_NOTEBOOK_BYTES:
            print(f"{path.name} is over {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB: draw fewer or smaller figures",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
