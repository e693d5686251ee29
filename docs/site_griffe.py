"""A griffe extension for the API reference (mkdocs.yml: mkdocstrings ``extensions``).

mlstm's docstrings are numpydoc written with Sphinx in mind; mkdocstrings renders Markdown.
This extension adapts the copy that griffe renders (the source is not changed):

* Sphinx roles (``:func:`x```, ``:class:`~mlstm.Model```, ...) become links to the
  reference when the name is documented there, plain code otherwise (a relative name is
  looked up in the object's module first);
* ``>>>`` examples outside an Examples section become code blocks (as Markdown they would
  be text, and ``[...]`` in them would read as links);
* reST simple tables (``====  ====``) become Markdown tables, ``text::`` before an
  indented block reads ``text:``, and ```text <url>`_`` links become Markdown links;
* undocumented instance attributes (``self.x = x``) are left out: the class docstring's
  Attributes section describes them;
* a paragraph that follows a Parameters section without a header of its own (numpydoc
  wants ``Notes`` there) is read as Notes instead of as bogus parameters; such docstrings
  are listed at INFO level (``mkdocs build -v``) so that the header can be added;
* a docstring that documents parameters a ``**kwargs`` passes on is not warned about.
"""
from __future__ import annotations

import html
import logging
import re

import griffe

log = logging.getLogger("mkdocs.hooks.mlstm_griffe")

_SECTION_RULE = re.compile(r"^-{3,}$")
_PARAM_HEADER = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*(\s+:\s*.*)?$")
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|obj|exc):`([~!]?)([\w.]+)(\(\))?`")
_TABLE_RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")
_FENCE = re.compile(r"^\s*```")
_REST_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^>]+)>`__?")
_LITERAL_MARKER = re.compile(r"(?<=\w)::\n\n(?=[ \t]+\S)")


def notes_for_trailing_paragraphs(text):
    """``text`` with a ``Notes`` header before any paragraph that follows the entries of
    a Parameters section without a header of its own; None when there is none."""
    lines = text.splitlines()
    out, in_parameters, changed = [], False, False
    for k, line in enumerate(lines):
        if k + 1 < len(lines) and _SECTION_RULE.match(lines[k + 1].strip() or "x"):
            in_parameters = line.strip() in ("Parameters", "Other Parameters")
        elif (in_parameters and line and not line[0].isspace() and k > 0
              and not lines[k - 1].strip() and not _SECTION_RULE.match(line)
              and not _PARAM_HEADER.match(line.strip())):
            out += ["Notes", "-----"]
            in_parameters, changed = False, True
        out.append(line)
    return "\n".join(out) if changed else None


def fence_doctests(text):
    """Wrap runs of ``>>>`` lines (and their output, up to a blank line) that are not in
    an Examples section or a fence into ```` ```pycon ```` blocks."""
    lines = text.splitlines()
    out, k, in_examples, in_fence = [], 0, False, False
    while k < len(lines):
        line = lines[k]
        if k + 1 < len(lines) and _SECTION_RULE.match(lines[k + 1].strip() or "x"):
            in_examples = line.strip() in ("Examples", "Example")
        if _FENCE.match(line):
            in_fence = not in_fence
        if line.lstrip().startswith(">>>") and not in_examples and not in_fence:
            indent = line[:len(line) - len(line.lstrip())]
            block = []
            while k < len(lines) and lines[k].strip():
                block.append(lines[k])
                k += 1
            out += [f"{indent}```pycon"] + block + [f"{indent}```"]
            continue
        out.append(line)
        k += 1
    return "\n".join(out)


def markdown_tables(text):
    """reST simple tables (rules of ``=``) as Markdown tables; a row whose first cell is
    empty continues the row above."""
    lines = text.splitlines()
    out, k = [], 0
    while k < len(lines):
        if not _TABLE_RULE.match(lines[k]):
            out.append(lines[k])
            k += 1
            continue
        rule = lines[k]
        starts = [m.start() for m in re.finditer(r"=+", rule)]
        end = next((j for j in range(k + 1, len(lines)) if _TABLE_RULE.match(lines[j])), None)
        if end is None:
            out.append(rule)
            k += 1
            continue
        rows = []
        for line in lines[k + 1:end]:
            if not line.strip():
                continue
            cells = _split_row(line, starts)
            if rows and not cells[0]:
                rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
            else:
                rows.append(cells)
        indent = rule[:len(rule) - len(rule.lstrip())]
        out += [indent + "| " + " | ".join(" " for _ in starts) + " |",
                indent + "|" + "|".join("---" for _ in starts) + "|"]
        out += [indent + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                for row in rows]
        k = end + 1
    return "\n".join(out)


def _split_row(line, starts):
    """Cells of one table row; text that runs past a column's rule (as ``"bce_from_logits"``
    does) ends at the next space instead."""
    cells, begin = [], starts[0]
    for boundary in starts[1:]:
        cut = boundary
        if 0 < cut <= len(line) and line[cut - 1] != " ":
            gap = re.compile(r"\s+").search(line, cut)
            cut = gap.start() if gap else len(line)
        cells.append(line[begin:cut].strip())
        begin = cut
    cells.append(line[begin:].strip())
    return cells


def rest_links(text):
    """A reST link (text, then the url in angle brackets, in backquotes and an underscore)
    -> ``[text](url)``."""
    return _REST_LINK.sub(lambda m: f"[{m.group(1).strip()}]({m.group(2)})", text)


def roles_to_links(text, module_path):
    """``:func:`x``` -> an optional autorefs link (plain code when ``x`` is not documented)."""
    def link(match):
        short, name = match.group(1) == "~", match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        shown += match.group(3) or ""
        candidates = [name] if name.startswith("mlstm") else [f"{module_path}.{name}", name]
        ref = candidates[0]
        return (f'<autoref identifier="{html.escape(ref)}" optional>'
                f"<code>{html.escape(shown)}</code></autoref>")
    return _ROLE.sub(link, text)


class MarkdownFromNumpydoc(griffe.Extension):
    """Adapt each docstring as the module docstring says."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        docstring = getattr(obj, "docstring", None)
        if docstring is None or obj.is_alias:
            return
        text = docstring.value
        notes = notes_for_trailing_paragraphs(text)
        if notes is not None:
            log.info("docstring of %s: the paragraph after Parameters is read as Notes "
                     "(add a 'Notes' header there)", obj.path)
            text = notes
        module = obj.module.path if not obj.is_module else obj.path
        text = _LITERAL_MARKER.sub(":\n\n", text)          # reST "::" before a code block
        docstring.value = rest_links(roles_to_links(markdown_tables(fence_doctests(text)),
                                                    module))

    def on_function_instance(self, *, node, func, agent, **kwargs):
        self._allow_kwargs_params(func, func)

    def on_class_members(self, *, node, cls, agent, **kwargs):
        init = cls.members.get("__init__")
        if init is not None and not init.is_alias:
            self._allow_kwargs_params(cls, init)
        # ``self.x = x`` in __init__ without a docstring of its own says nothing that the
        # class docstring's Attributes section does not: leave it out of the page.
        for name, member in list(cls.members.items()):
            if (not member.is_alias and member.is_attribute
                    and "instance-attribute" in member.labels and not member.docstring):
                cls.del_member(name)

    @staticmethod
    def _allow_kwargs_params(obj, function):
        """Parameters documented for a ``**kwargs`` that passes them on are not unknown."""
        docstring = obj.docstring
        if docstring is None or not any(p.kind is griffe.ParameterKind.var_keyword
                                        for p in function.parameters):
            return
        docstring.parser_options = {**(docstring.parser_options or {}),
                                    "warn_unknown_params": False}
