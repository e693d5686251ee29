"""The ``mlstm`` console script (setup.cfg ``[options.entry_points]``) is ``python -m mlstm``."""
import configparser
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env():
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def _declared_entry_point():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)
    return scripts["mlstm"]


def _python_m_help():
    run = subprocess.run([sys.executable, "-m", "mlstm", "--help"], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_script_is_declared_and_points_at_main():
    assert _declared_entry_point() == "mlstm.__main__:main"


def test_the_entry_point_function_prints_what_python_m_mlstm_prints(capsys):
    module_name, function_name = _declared_entry_point().split(":")
    main = getattr(importlib.import_module(module_name), function_name)
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    assert printed == _python_m_help()
    for command in ("demo", "diagnose", "crosscheck"):
        assert command in printed


def test_the_installed_script_runs():
    script = shutil.which("mlstm")
    if script is None:
        pytest.skip("no mlstm script on PATH (pip install -e . installs it); the entry point "
                    "function is exercised above")
    run = subprocess.run([script, "--help"], env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == _python_m_help()
