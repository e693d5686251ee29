"""Pictures of a diagnosis (matplotlib, the ``plot`` extra; imported only here).

A report is drawn as the panels that have something to say about it
(:mod:`mlstm.diagnostics.panels`): first one panel per finding raised, in the report's
order (causes first), titled with the finding in words, each followed by the fix tried for
it when ``verify`` ran; then the panels that tell the rest of the story (each output's
loss, who trains the shared weights, how fast each weight matrix moves against the healthy
band, ...). Panels with nothing to show (every sample reached, nothing saturated) are left
out. One report flows over two columns; several (the seed scenario's setups) get one
column each, side by side.
"""
from __future__ import annotations

import math
import os
import textwrap
from typing import TYPE_CHECKING, Any, Sequence

from .panels import PANELS, Panel, fix_panels

if TYPE_CHECKING:
    from .findings import ReportFields

__all__ = ["require_matplotlib", "plot_reports", "report_panels"]


def require_matplotlib() -> Any:
    """Import matplotlib with a file-only backend, or raise ImportError saying what to do."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib, which is not installed: "
                          "pip install 'mlstm[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def report_panels(report: ReportFields) -> list[tuple[str, Panel]]:
    """``[(title, panel), ...]`` for ``report``, in drawing order (see the module docstring)."""
    panels = [p for p in (make(report) for make in PANELS) if p is not None]
    fixes = fix_panels(report)
    ordered: list[tuple[str, Panel]] = []
    used: set[int] = set()
    for finding in report.findings:
        for panel in panels:
            if id(panel) not in used and finding.code in panel.codes:
                used.add(id(panel))
                ordered.append((f"{finding.title}\n— {panel.title[0].lower()}{panel.title[1:]}",
                                panel))
                break
        for fix in fixes:
            if id(fix) not in used and finding.code in fix.codes:
                used.add(id(fix))
                ordered.append((fix.title, fix))
    ordered += [(p.title, p) for p in panels + fixes if id(p) not in used]
    return ordered


def _draw(ax: Any, title: str, panel: Panel, colors: list[str]) -> None:
    panel.draw(ax, colors)
    ax.set_title("\n".join(textwrap.fill(line, 58) for line in title.splitlines()),
                 fontsize=8.5, loc="left")
    ax.tick_params(labelsize=7)


def plot_reports(reports: Sequence[ReportFields], path: str | os.PathLike[str],
                 titles: Sequence[str] | None = None, dpi: int = 80) -> str | os.PathLike[str]:
    """Draw reports to a PNG at ``path``; returns ``path``.

    Raises
    ------
    ImportError
        Without matplotlib, with the install command in the message.
    """
    plt = require_matplotlib()
    titles = list(titles) if titles else [r.model_name for r in reports]
    columns = [report_panels(r) for r in reports]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(reports) == 1:
        cells = columns[0]
        ncols = 2 if len(cells) > 1 else 1
        nrows = max(math.ceil(len(cells) / ncols), 1)
        places = [(k // ncols, k % ncols) for k in range(len(cells))]
        heads = [(0.5, titles[0])]
    else:
        ncols, nrows = len(reports), max(max(len(c) for c in columns), 1)
        cells = [cell for column in columns for cell in column]
        places = [(row, col) for col, column in enumerate(columns) for row in range(len(column))]
        heads = [((col + 0.5) / ncols, t) for col, t in enumerate(titles)]
    height = 2.9 * nrows + 0.6
    fig = plt.figure(figsize=(5.2 * ncols, height))
    grid = fig.add_gridspec(nrows, ncols)
    for (title, panel), (row, col) in zip(cells, places):
        _draw(fig.add_subplot(grid[row, col]), title, panel, colors)
    if not cells:
        ax = fig.add_subplot(grid[0, 0])
        ax.axis("off")
        ax.text(0.5, 0.5, "no finding, and no training steps traced (steps=0)",
                ha="center", va="center")
    top = 1 - 0.45 / height
    for x, text in heads:
        fig.text(x, 1 - 0.12 / height, textwrap.fill(text, 60 if ncols > 1 else 110),
                 ha="center", va="top", fontsize=10, weight="bold")
    fig.tight_layout(rect=(0, 0, 1, top), h_pad=1.2, w_pad=1.0)
    _save_small(fig, path, dpi)
    plt.close(fig)
    return path


def _save_small(fig: Any, path: str | os.PathLike[str], dpi: int) -> None:
    """Save as a PNG with a 256-colour palette (a third of the size of full colour, the
    same to the eye for line plots), through Pillow, which matplotlib requires."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
