"""The documentation site builds in strict mode and holds what it promises: every public
name in the reference, the pages with their math, the executed tutorial, the examples and
the pictures; the pictures are the ones docs/make_figures.py draws.

The build needs the ``docs`` extra (mkdocs, mkdocs-material, mkdocstrings-python, jupytext);
without it those tests are skipped.
"""
import importlib
import importlib.util
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
MAX_FIGURE_BYTES = 200 * 1024


#: skipped without the docs extra, required in CI (tests/conftest.py)
needs_site_tools = pytest.mark.docs


def _env():
    paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), MPLBACKEND="Agg",
                NO_MKDOCS_2_WARNING="1")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                          str(ROOT / "mkdocs.yml"), "-d", str(out)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{log[-5000:]}"
    return out


def _inventory(site):
    """The identifiers in mkdocstrings' objects.inv (Sphinx inventory v2)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    lines = zlib.decompress(data[header_end:]).decode("utf-8").splitlines()
    return {line.split(" ", 1)[0] for line in lines if line.strip()}


def _public_modules():
    """Every module of the public API (the diagnostics package under its current name)."""
    import mlstm

    # Looked up in this mlstm's folder (an editable install elsewhere may also answer).
    package = Path(mlstm.__file__).parent
    diagnostics = "mlstm.diagnostics" if (package / "diagnostics").is_dir() else "mlstm.inspect"
    return ["mlstm.layers", "mlstm.losses", "mlstm.optimizers", "mlstm.metrics",
            "mlstm.initializers", "mlstm.gradcheck", "mlstm.testing", diagnostics,
            "mlstm.interop.keras", "mlstm.interop.torch", "mlstm.io", "mlstm.callbacks",
            "mlstm.validation", "mlstm.data", "mlstm.plotting", "mlstm.ops.lstm",
            "mlstm.ops.dense", "mlstm.ops.merge", "mlstm.ops.activations"]


@needs_site_tools
def test_every_public_name_is_in_the_reference(site):
    inventory = _inventory(site)
    missing = []
    for module_name in _public_modules():
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        for name in module.__all__:
            if f"{module_name}.{name}" not in inventory:
                missing.append(f"{module_name}.{name}")
    import mlstm

    for name in mlstm.__all__:
        obj = getattr(mlstm, name)
        if name == "__version__":
            continue
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            identifier = f"{obj.__module__}.{obj.__qualname__}"
        else:                                                  # a module
            identifier = obj.__name__
        if identifier not in inventory:
            missing.append(f"mlstm.{name} (as {identifier})")
    assert not missing, f"not in the API reference: {missing}"


@needs_site_tools
def test_pages_math_pictures_examples_and_code_links(site):
    lstm = (site / "lstm.html").read_text(encoding="utf-8")
    assert lstm.count('class="arithmatex"') >= 20             # $...$ and ```math rendered
    assert "mathjax" in lstm.lower()
    # A Code: link goes to the function's entry in the reference.
    assert re.search(r'href="api/ops\.html#mlstm\.ops\.lstm_reference\.lstm_step"', lstm)
    for page in ["index.html", "dense_and_merge.html", "losses.html", "optimizers.html",
                 "multi_output.html", "keras.html", "diagnose.html", "reliability.html",
                 "performance.html", "design.html", "api/index.html", "api/layers.html"]:
        assert (site / page).is_file(), page
    for figure in sorted(FIGURES.glob("*.png")):
        assert (site / "figures" / figure.name).is_file()
    referenced = set()
    for html in site.rglob("*.html"):
        referenced |= set(re.findall(r'src="(?:\.\./)*figures/([\w.]+\.png)"',
                                     html.read_text(encoding="utf-8")))
    assert referenced == {f.name for f in FIGURES.glob("*.png")}, (
        f"figures shown on pages: {sorted(referenced)}")
    examples = sorted(p.stem for p in (ROOT / "examples").glob("[0-9]*.py"))
    for stem in examples:
        page = (site / "examples" / f"{stem}.html").read_text(encoding="utf-8")
        assert "import" in page and stem in page


@needs_site_tools
def test_the_tutorial_page_shows_what_the_tutorial_printed(site):
    page = (site / "tutorial.html").read_text(encoding="utf-8")
    for printed in ["Total params: 3266", "the per-output parts add up to the total gradient",
                    "low_sample_coverage", "gradient check passed"]:
        assert printed in page, printed
    assert (site / "tutorial.py").is_file()                    # the notebook, to download


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_figures_are_small_pngs():
    figures = sorted(FIGURES.glob("*.png"))
    assert {f.stem for f in figures} >= {"lstm_cell", "bptt_unrolled", "seed_model"}
    for figure in figures:
        assert figure.stat().st_size < MAX_FIGURE_BYTES, (figure.name, figure.stat().st_size)
        width, height = _png_size(figure)
        assert 500 < width < 2000 and 500 < height < 2000, (figure.name, width, height)


def test_make_figures_draws_every_checked_in_figure(tmp_path):
    pytest.importorskip("matplotlib")
    run = subprocess.run([sys.executable, str(DOCS / "make_figures.py"), "--out",
                          str(tmp_path)], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    drawn = {p.name: _png_size(p) for p in tmp_path.glob("*.png")}
    # diagnose_*.png are drawn by the commands docs/diagnose.md shows with each of them
    # (python -m mlstm diagnose --plot ..., report.plot(...)), minutes of training, not here
    checked_in = {p.name: _png_size(p) for p in FIGURES.glob("*.png")
                  if not p.name.startswith("diagnose_")}
    assert drawn == checked_in, "regenerate: python docs/make_figures.py"
    bad = subprocess.run([sys.executable, str(DOCS / "make_figures.py"), "--out",
                          str(tmp_path), "no_such_figure"], env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown figures ['no_such_figure']" in bad.stderr


def _load(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.docs
def test_docstring_adaptations():
    g = _load("site_griffe")
    text = ("Summary.\n\nParameters\n----------\nunits : int\n    H.\nuse_bias : bool\n\n"
            "Call with ``initial_state``: then it starts there.\n")
    fixed = g.notes_for_trailing_paragraphs(text)
    assert "use_bias : bool\n\nNotes\n-----\nCall with" in fixed
    assert g.notes_for_trailing_paragraphs("Parameters\n----------\na, b : int\n\nc\n") is None
    table = "==========  =====\n``a``       one\n``b``       two\n            more\n==========  =====\n"
    assert g.markdown_tables(table).splitlines() == [
        "|   |   |", "|---|---|", "| ``a`` | one |", "| ``b`` | two more |"]
    overflowing = ("==========  =====\n``\"bce_from_logits\"``  on a linear head\n"
                   "==========  =====\n")
    assert g.markdown_tables(overflowing).splitlines()[2] == (
        '| ``"bce_from_logits"`` | on a linear head |')
    assert g.markdown_tables("====  ====\n``abcdef`` one two\n====  ====").splitlines()[2] == (
        "| ``abcdef`` | one two |")
    assert g.rest_links("see `hypothesis <https://h.io>`_.") == "see [hypothesis](https://h.io)."
    fenced = g.fence_doctests("Text.\n\n>>> 1 + 1\n2\n\nMore.")
    assert fenced == "Text.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nMore."
    assert ">>> 1" in g.fence_doctests("Examples\n--------\n>>> 1\n1") and "```" not in \
        g.fence_doctests("Examples\n--------\n>>> 1\n1")
    linked = g.roles_to_links("See :class:`Optimizer` and :func:`~mlstm.ops.lstm.lstm_step`.",
                              "mlstm.optimizers")
    assert 'identifier="mlstm.optimizers.Optimizer"' in linked
    assert '<code>lstm_step</code>' in linked and "optional" in linked


@pytest.mark.docs
def test_code_links_are_rewritten_for_the_site():
    hooks = _load("site_hooks")

    class Page:
        class file:
            src_uri = "lstm.md"

    markdown = ("Code: [`mlstm.ops.lstm.lstm_step`](../mlstm/ops/lstm.py), "
                "[the module](../mlstm/ops/lstm.py), [example](../examples/01_seed_model.py), "
                "[all](../examples), [page](losses.md), [web](https://example.org/x.py), "
                "[other](../setup.cfg)")
    out = hooks.on_page_markdown(markdown, Page, None, None)
    assert "[`mlstm.ops.lstm.lstm_step`][mlstm.ops.lstm.lstm_step]" in out
    assert "[the module][mlstm.ops.lstm]" in out
    assert "[example](examples/01_seed_model.md)" in out
    assert "[all](examples/index.md)" in out
    assert "[page](losses.md)" in out and "[web](https://example.org/x.py)" in out
    assert "[other](../setup.cfg)" in out                   # left for mkdocs to report
