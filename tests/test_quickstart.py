"""The README's first command: the quickstart trains on the embedded data in under 5 minutes and says where
everything is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_trains_in_under_five_minutes_and_reports_its_outputs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "zoo", "fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
         f"--trainer.default_root_dir={tmp_path / 'runs'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert elapsed < 300, f"the quickstart took {elapsed:.0f} s"
    assert "500/500" in output, "no progress bar in the output"
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    for label, path in (("checkpoint", run_dir / "checkpoints" / "last.ckpt"), ("config", run_dir / "config.yaml"),
                        ("samples", run_dir / "images")):
        assert path.exists(), f"{path} missing"
        assert any(line.strip().startswith(label) and str(path.relative_to(tmp_path)) in line
                   for line in output.splitlines()), f"the summary does not say where the {label} is"
    assert sorted(p.name for p in (run_dir / "images").glob("*.png"))[-1].endswith("0000500.png")
