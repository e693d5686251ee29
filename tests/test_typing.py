"""The public API is typed (PEP 561) and mypy passes on the whole package.

The configuration is setup.cfg's ``[mypy]`` section: every function annotated, every body
checked. mypy is in the ``test`` extra, so this runs wherever the suite runs, CI included.
"""
import subprocess
import sys
from pathlib import Path

import mlstm

ROOT = Path(__file__).resolve().parents[1]


def test_package_ships_py_typed_marker():
    assert (Path(mlstm.__file__).parent / "py.typed").is_file()


def test_mypy_passes_on_the_package():
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "setup.cfg"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success" in result.stdout
