"""docs/tutorial.py (a jupytext py:percent notebook) runs as a plain script and prints what
its text says; with jupytext installed it is also a valid notebook."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.py"


def test_tutorial_runs_as_a_script_in_under_a_minute(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in
                                          os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                          if p]))
    started = time.perf_counter()
    run = subprocess.run([sys.executable, str(TUTORIAL)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert run.returncode == 0, f"tutorial failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    out = run.stdout
    # What the text around the cells states, as printed by the cells themselves (the
    # script's own asserts check the figures: out1 learns, the parts add up to the total,
    # diagnose finds low_sample_coverage, the gradient check passes).
    for expected in ["Total params: 3266", "the per-output parts add up to the total gradient",
                     "low_sample_coverage: The loss of 'out1' reaches only part of each batch",
                     "low_sample_coverage: The loss of 'out2' reaches only part of each batch",
                     "gradient check", "input:x2", "tutorial ran in"]:
        assert expected in out, f"{expected!r} not in the tutorial's output:\n{out[-3000:]}"
    assert list(tmp_path.iterdir()) == [], "the tutorial wrote into the working directory"
    assert seconds < 60, f"the tutorial took {seconds:.1f} s"


def test_tutorial_is_a_jupytext_notebook():
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    text = TUTORIAL.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    nbformat.validate(notebook)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 8 and kinds.count("code") >= 8, kinds
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# Why isn't my multi-input")
    # Text -> notebook -> text -> notebook keeps every cell as it is.
    again = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
    assert [(c.cell_type, c.source) for c in again.cells] == [
        (c.cell_type, c.source) for c in notebook.cells]
    ipynb = jupytext.writes(notebook, fmt="ipynb")
    assert '"cell_type": "markdown"' in ipynb
