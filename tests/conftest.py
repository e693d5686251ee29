"""Shared test setup.

Tests marked ``keras`` (or ``torch``, or ``docs``) need TensorFlow/Keras (or PyTorch, or the
docs extra). Without them they are skipped, except when ``MLSTM_REQUIRE_KERAS=1`` (CI): then
a missing extra is an error, so a cross-check or the site build can never be skipped
silently where it must run.
"""
import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

REQUIRED = os.environ.get("MLSTM_REQUIRE_KERAS") == "1"
_MODULES = {"keras": ("keras", "tensorflow"), "torch": ("torch",),
            "docs": ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "jupytext",
                     "griffe")}


def _missing(marker):
    return [m for m in _MODULES[marker] if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config, items):
    for marker in _MODULES:
        missing = _missing(marker)
        if not missing:
            continue
        for item in items:
            if marker in item.keywords:
                if REQUIRED:
                    item.add_marker(pytest.mark.usefixtures("_require_" + marker))
                else:
                    item.add_marker(pytest.mark.skip(
                        reason=f"{', '.join(missing)} not installed (pip install '.[{marker}]')"))


@pytest.fixture
def _require_keras():
    pytest.fail(f"MLSTM_REQUIRE_KERAS=1 but {_missing('keras')} cannot be imported: "
                "install the keras extra (pip install '.[keras]')")


@pytest.fixture
def _require_docs():
    pytest.fail(f"MLSTM_REQUIRE_KERAS=1 but {_missing('docs')} cannot be imported: "
                "install the docs extra (pip install '.[docs]')")


@pytest.fixture
def _require_torch():
    pytest.fail(f"MLSTM_REQUIRE_KERAS=1 but {_missing('torch')} cannot be imported: "
                "install the torch extra (pip install '.[torch]')")
