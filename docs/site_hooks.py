"""mkdocs hooks of the documentation site (mkdocs.yml: ``hooks``). Not part of the package.

* **Tutorial page**: ``docs/tutorial.py`` (jupytext py:percent) becomes ``tutorial.md``, its
  code cells run one after the other in one namespace and each followed by what it printed,
  so the page shows today's numbers; a cell that raises fails the build.
* **Examples pages**: every ``examples/*.py`` becomes ``examples/<name>.md`` (its docstring,
  then the code), and ``examples/index.md`` lists them.
* **Code links**: the pages link code files (``[`mlstm.ops.lstm.lstm_step`](../mlstm/ops/lstm.py)``)
  so that they work on GitHub; on the site such a link goes to the object's entry in the API
  reference (an autorefs link, which fails the strict build when the object is not
  documented), and a link to ``../examples/x.py`` to the example's page. Any other link out
  of ``docs/`` is left alone, so mkdocs reports it.
* **Docstrings**: every public function and class documented on an ``api/`` page (the
  ``__all__`` of each module rendered there, or its ``members`` option) must have a
  docstring: a missing one is a warning, which fails ``mkdocs build --strict``.
  :data:`REQUIRE_METHOD_DOCSTRINGS` extends that to the public methods of those classes.
* **MathJax**: writes ``assets/mathjax-config.js``, which makes MathJax typeset what
  pymdownx.arithmatex marked (``$...$`` and the ```` ```math ```` fences), and
  ``assets/extra.css`` (a wider page).

How docstrings written for numpydoc/Sphinx read as Markdown: ``docs/site_griffe.py``.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import logging
import posixpath
import re
import textwrap
import traceback
from pathlib import Path

import yaml
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.mlstm_site")

ROOT = Path(__file__).resolve().parent.parent
#: A wider page than Material's default (61rem): room for the equations and the pictures.
EXTRA_CSS = """\
.md-grid { max-width: 80rem; }
.md-typeset img { display: block; margin: 0 auto; }
"""
#: Public methods without a docstring fail the build too once this is True (today they are
#: listed at INFO level: ``mkdocs build -v``).
REQUIRE_METHOD_DOCSTRINGS = False

MATHJAX_CONFIG = """\
window.MathJax = {
  loader: {load: ["[tex]/textmacros"]},     // \\_ inside \\text{...}, as on GitHub
  tex: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true, packages: {"[+]": ["textmacros"]}},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}
};
if (typeof document$ !== "undefined") {     // Material's instant navigation
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache(); MathJax.typesetClear(); MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
"""

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")
_DIRECTIVE = re.compile(r"^::: ([\w.]+)[ \t]*\n((?:[ \t]+.*\n?|[ \t]*\n)*)", re.MULTILINE)


# --------------------------------------------------------------------------- files
def on_files(files, config):
    """Add the generated pages and the MathJax configuration."""
    generated = {"assets/mathjax-config.js": MATHJAX_CONFIG, "assets/extra.css": EXTRA_CSS,
                 "tutorial.md": tutorial_markdown(ROOT / "docs" / "tutorial.py")}
    examples = sorted((ROOT / "examples").glob("[0-9]*.py"))
    rows = []
    for script in examples:
        title, body = example_markdown(script)
        generated[f"examples/{script.stem}.md"] = body
        rows.append(f"| [{script.name}]({script.stem}.md) | {title} |")
    generated["examples/index.md"] = (
        "# Examples\n\nEach script in `examples/` runs in seconds and prints what it shows "
        "(`python examples/<name>.py`; `tests/test_examples.py` runs them all).\n\n"
        "| script | shows |\n|---|---|\n" + "\n".join(rows) + "\n")
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    return files


def example_markdown(script):
    """``(first docstring line, page)`` for one example script."""
    source = script.read_text(encoding="utf-8")
    module_doc = inspect.cleandoc(_module_docstring(source) or script.stem)
    title = module_doc.splitlines()[0].rstrip(".")
    page = (f"# {script.name}\n\n{module_doc}\n\n```bash\npython examples/{script.name}\n```\n\n"
            f"```python\n{source.rstrip()}\n```\n")
    return title, page


def _module_docstring(source):
    import ast

    try:
        return ast.get_docstring(ast.parse(source))
    except SyntaxError:
        return None


def tutorial_markdown(path):
    """The notebook as a page: markdown cells as they are, code cells with their output."""
    import jupytext

    notebook = jupytext.read(path, fmt="py:percent")
    namespace = {"__name__": "__tutorial__", "__file__": str(path)}
    parts = [f"!!! note \"Run it yourself\"\n    This page is [`docs/tutorial.py`](tutorial.py), "
             "a jupytext notebook, run when the site was built. Open it in Jupyter "
             "(`pip install \"mlstm[docs]\"`) or run `python docs/tutorial.py`.\n"]
    for k, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        parts.append(f"```python\n{cell.source}\n```")
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(cell.source, f"{path.name} cell {k}", "exec"), namespace)
        except Exception:                                   # noqa: BLE001 (reported)
            log.warning("docs/tutorial.py: cell %d raised:\n%s", k, traceback.format_exc())
            break
        output = printed.getvalue().rstrip()
        if output:
            parts.append(f"```text\n{output}\n```")
    return "\n\n".join(parts) + "\n"


def on_page_markdown(markdown, page, config, files):
    """Code links to the reference, example links to their pages."""
    page_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(match):
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if "://" in target or target.startswith(("mailto:", "/")):
            return match.group(0)
        resolved = posixpath.normpath(posixpath.join(page_dir, target))
        if not resolved.startswith("../"):
            return match.group(0)                            # inside docs/: mkdocs checks it
        repo_path = resolved[3:]
        if repo_path.startswith("mlstm/") and repo_path.endswith(".py"):
            module = repo_path[:-3].replace("/", ".").removesuffix(".__init__")
            named = re.fullmatch(r"`(mlstm(?:\.\w+)+)`", text)
            return f"[{text}][{named.group(1) if named else module}]"
        if repo_path.rstrip("/") == "examples":
            return f"[{text}]({posixpath.relpath('examples/index.md', page_dir or '.')})"
        if repo_path.startswith("examples/") and repo_path.endswith(".py"):
            stem = posixpath.basename(repo_path)[:-3]
            return f"[{text}]({posixpath.relpath(f'examples/{stem}.md', page_dir or '.')})"
        return match.group(0)

    return _LINK.sub(rewrite, markdown)


# --------------------------------------------------------------------------- docstrings
def on_pre_build(config):
    """Warn (failing a strict build) for documented public objects without a docstring."""
    missing, methods = [], []
    for page in sorted((Path(config["docs_dir"]) / "api").glob("*.md")):
        for identifier, options in _directives(page.read_text(encoding="utf-8")):
            for name, obj in _documented_objects(identifier, options):
                if inspect.isclass(obj) or inspect.isfunction(obj):
                    if not (inspect.getdoc(obj) or "").strip():
                        missing.append(f"{name} (api/{page.name})")
                if inspect.isclass(obj):
                    methods += [f"{name}.{m}" for m in _undocumented_methods(obj)]
    for entry in sorted(set(missing)):
        log.warning("no docstring: %s", entry)
    if methods:
        report = log.warning if REQUIRE_METHOD_DOCSTRINGS else log.info
        report("public methods without a docstring (%d): %s", len(set(methods)),
               ", ".join(sorted(set(methods))))


def _directives(text):
    """``[(identifier, options dict)]`` of the ``::: identifier`` blocks of a page."""
    found = []
    for match in _DIRECTIVE.finditer(text):
        block = yaml.safe_load(textwrap.dedent(match.group(2))) if match.group(2).strip() else {}
        found.append((match.group(1), (block or {}).get("options", {}) or {}))
    return found


def _resolve(identifier):
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise ImportError(identifier)


def _documented_objects(identifier, options):
    """The object and, for a module, the public members the page renders."""
    try:
        obj = _resolve(identifier)
    except ImportError:
        log.warning("api page names %s, which does not import", identifier)
        return []
    if not inspect.ismodule(obj):
        return [(identifier, obj)]
    members = options.get("members")
    if not isinstance(members, list):
        members = getattr(obj, "__all__", None)
        if members is None:
            members = [n for n, v in vars(obj).items() if not n.startswith("_")
                       and getattr(v, "__module__", None) == obj.__name__]
    found = []
    for name in members:
        if not hasattr(obj, name):
            log.warning("%s lists %r, which it does not define", identifier, name)
            continue
        found.append((f"{identifier}.{name}", getattr(obj, name)))
    return found


def _undocumented_methods(cls):
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        function = value.fget if isinstance(value, property) else getattr(value, "__func__",
                                                                           value)
        if inspect.isfunction(function) and not (inspect.getdoc(getattr(cls, name, None))
                                                 or "").strip():
            names.append(name)
    return names

