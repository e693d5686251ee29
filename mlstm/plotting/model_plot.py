"""``plot_model(model, path)``: a picture of a model's graph, drawn with matplotlib alone.

Each call of a layer is a box: the layer's name, its class with the options that differ
from the defaults (as a constructor call), the shape of what it outputs and its parameter
count. Rows follow the graph's depth from the inputs at the top to the outputs at the
bottom (:mod:`mlstm.plotting.graph_layout`); every model output gets a badge naming it
and, when the model is compiled, its loss and loss weight. The title says what the model
adds up to: inputs, outputs, parameters, and the weighted total loss and the optimizer.

Only public attributes of the model are read (``model.nodes``, ``node.layer``,
``node.inputs``, ``node.outputs``, ``tensor.shape``, ``model.outputs``,
``model.output_names``, ``layer.get_config()``), and the compiled losses.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from .graph_layout import layered_layout

if TYPE_CHECKING:
    from ..layers.base import Layer, Node
    from ..model_protocol import TrainableModel

__all__ = ["plot_model", "SUPPORTED_SUFFIXES"]

#: File types :func:`plot_model` writes (matplotlib picks the format from the suffix).
SUPPORTED_SUFFIXES = (".png", ".svg", ".pdf")

# Pastel fills, given to layer classes in the order they first appear in the model.
_FILLS = ("#dceefb", "#fde4cf", "#e2f0d9", "#ead7f2", "#fff2b3", "#fbd3d9", "#d6f0ee",
          "#e6e6e6")
_OUTPUT_FILL, _EDGE, _TEXT_MUTED = "#ffe9c7", "#555555", "#444444"
# Font sizes (points) and line heights (inches) of the boxes.
_NAME_PT, _CLASS_PT, _SHAPE_PT = 9.5, 8.5, 8.0
_LINE_IN = 0.19
_PAD_X, _PAD_Y = 0.14, 0.09
# Config entries not worth a box's room: the name is shown, dtype is in the title, and the
# initializers and seed only say how the weights started.
_HIDDEN_OPTIONS = {"name", "dtype", "trainable", "seed"}
_MAX_OPTIONS_CHARS = 46

#: A line of text in a box and its font: ``(text, "name" | "class" | "shape")``.
Line = tuple[str, str]


class _Box(TypedDict):
    lines: list[Line]
    fill: str
    output: bool


def plot_model(model: TrainableModel, path: str | os.PathLike[str], dpi: float = 120) -> Path:
    """Draw ``model``'s graph to ``path`` (PNG, SVG or PDF) with matplotlib.

    Parameters
    ----------
    model : mlstm.Model
        Compiled or not; a compiled model's outputs show their loss and loss weight.
    path : str or os.PathLike
        Ends in ``.png``, ``.svg`` or ``.pdf``; its directory must exist. Overwritten.
    dpi : int, optional
        Resolution of a PNG (the layout is in inches, so text keeps its size).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        ``model`` is not an mlstm Model, or ``path`` is not a str or path.
    ValueError
        ``path`` has another suffix, its directory does not exist, or it is a directory;
        ``dpi`` is not a positive number.
    ImportError
        matplotlib is not installed (``pip install "mlstm[plot]"``).

    Examples
    --------
    >>> import os, tempfile
    >>> import mlstm
    >>> from mlstm.plotting import plot_model
    >>> x = mlstm.Input(shape=(5, 3), name="x")
    >>> y = mlstm.Dense(1, name="y")(mlstm.LSTM(4, name="lstm")(x))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = plot_model(mlstm.Model(x, y), os.path.join(folder, "model.png"))
    ...     out.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    target = _checked_target(model, path, dpi)
    try:
        from matplotlib.figure import Figure
        from matplotlib.font_manager import FontProperties
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
        from matplotlib.path import Path as MplPath
        from matplotlib.textpath import TextPath
    except ImportError:
        raise ImportError("plot_model needs matplotlib, which is not installed: "
                          'pip install "mlstm[plot]" (or pip install matplotlib)') from None

    fonts = {"name": FontProperties(family="DejaVu Sans", weight="bold", size=_NAME_PT),
             "class": FontProperties(family="DejaVu Sans", size=_CLASS_PT),
             "shape": FontProperties(family="DejaVu Sans Mono", size=_SHAPE_PT)}

    def text_width(text: str, kind: str) -> float:
        """Width in inches of ``text`` in the font of ``kind``."""
        if not text:
            return 0.0
        prop = fonts[kind]
        return TextPath((0, 0), text, size=prop.get_size_in_points(),
                        prop=prop).get_extents().width / 72

    boxes, edges, labels = _boxes_and_edges(model)
    widths = [max(text_width(t, k) for t, k in b["lines"]) + 2 * _PAD_X for b in boxes]
    heights = [len(b["lines"]) * _LINE_IN + 2 * _PAD_Y for b in boxes]
    title = _title_lines(model)
    title_height = len(title) * _LINE_IN + 0.2
    layout = layered_layout(widths, heights, edges, top=title_height)
    title_width = max(text_width(t, k) for t, k in title) + 0.5
    fig_width = max(layout.width, title_width)
    dx = (fig_width - layout.width) / 2

    fig = Figure(figsize=(fig_width, layout.height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, fig_width)
    ax.set_ylim(layout.height, 0)                 # inches, y downwards
    ax.set_axis_off()

    def draw_lines(lines: Sequence[Line], cx: float, top: float) -> None:
        for j, (text, kind) in enumerate(lines):
            prop = fonts[kind]
            ax.text(cx, top + (j + 0.5) * _LINE_IN, text, ha="center", va="center",
                    fontproperties=prop, color="black" if kind == "name" else _TEXT_MUTED)

    for j, line in enumerate(title):
        draw_lines([line], fig_width / 2, 0.2 + j * _LINE_IN)

    centre_y: list[float] = []
    for k, box in enumerate(boxes):
        r = layout.row_of[k]
        cy = (layout.row_top[r] + layout.row_bottom[r]) / 2
        centre_y.append(cy)
        cx, w, h = layout.x[k] + dx, widths[k], heights[k]
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                                    boxstyle="round,pad=0,rounding_size=0.07",
                                    facecolor=box["fill"], edgecolor=_EDGE,
                                    linewidth=1.6 if box["output"] else 0.9))
        draw_lines(box["lines"], cx, cy - h / 2 + _PAD_Y)

    # Spread the ends of several edges along a box's bottom (out) or top (in) side, in the
    # left-to-right order of where they come from or go to, so they do not start stacked.
    points: list[list[tuple[float, float]]] = []
    for (u, v), route in zip(edges, layout.routes):
        start = (layout.x[u] + dx, centre_y[u] + heights[u] / 2)
        end = (layout.x[v] + dx, centre_y[v] - heights[v] / 2)
        points.append([start] + [(x + dx, y) for x, y in route] + [end])
    for end_index, neighbour_index, side in ((0, 1, 0), (-1, -2, 1)):
        by_box: dict[int, list[int]] = {}
        for e, (u, v) in enumerate(edges):
            by_box.setdefault(v if side else u, []).append(e)
        for box_index, edge_ids in by_box.items():
            edge_ids.sort(key=lambda e: points[e][neighbour_index][0])
            # Labelled ends (which output of a multi-output layer) need room for "[k]".
            room = 0.36 if any(labels[e] for e in edge_ids) else 0.22
            spacing = min(room, widths[box_index] / (len(edge_ids) + 1))
            for j, e in enumerate(edge_ids):
                x, y = points[e][end_index]
                points[e][end_index] = (x + (j - (len(edge_ids) - 1) / 2) * spacing, y)

    for e, pts in enumerate(points):
        verts, codes = [pts[0]], [MplPath.MOVETO]
        for j, (p, q) in enumerate(zip(pts, pts[1:])):
            if j % 2:                              # straight through a crossed row
                verts.append(q)
                codes.append(MplPath.LINETO)
            else:                                  # a smooth S between two rows
                mid = (p[1] + q[1]) / 2
                verts += [(p[0], mid), (q[0], mid), q]
                codes += [MplPath.CURVE4] * 3
        ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>",
                                     mutation_scale=9, linewidth=1.0, color=_EDGE,
                                     shrinkA=0, shrinkB=0))
        if labels[e]:                              # just below where the edge leaves
            x, y = pts[0]
            ax.text(x, y + 0.12, labels[e], ha="center", va="center",
                    fontproperties=fonts["shape"], color=_TEXT_MUTED,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                          "edgecolor": "none"})
    fig.savefig(target, dpi=dpi)
    return target


def _checked_target(model: object, path: object, dpi: object) -> Path:
    from ..graph import Graph

    if not isinstance(model, Graph):
        raise TypeError(f"plot_model: model must be an mlstm.Model, got "
                        f"{type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"plot_model: path must be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    target = Path(path)
    if target.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ValueError(f"plot_model: path {str(target)!r} must end in one of "
                         f"{', '.join(SUPPORTED_SUFFIXES)}, got {target.suffix or 'no suffix'!r}")
    if target.is_dir():
        raise ValueError(f"plot_model: path {str(target)!r} is a directory; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise ValueError(f"plot_model: the directory {str(parent)!r} of path {str(target)!r} "
                         "does not exist")
    if (not isinstance(dpi, (int, float)) or isinstance(dpi, bool) or not dpi > 0
            or dpi != dpi):
        raise ValueError(f"plot_model: dpi must be a positive number, got {dpi!r}")
    return target


def _boxes_and_edges(model: TrainableModel,
                     ) -> tuple[list[_Box], list[tuple[int, int]], list[str]]:
    """Boxes (one per layer call, then one per model output), edges and edge labels."""
    nodes = list(model.nodes)
    index = {id(node): k for k, node in enumerate(nodes)}
    calls: dict[int, list[Node]] = {}
    for node in nodes:
        calls.setdefault(id(node.layer), []).append(node)
    fills: dict[str, str] = {}
    for node in nodes:
        fills.setdefault(type(node.layer).__name__, _FILLS[len(fills) % len(_FILLS)])

    boxes: list[_Box] = []
    edges: list[tuple[int, int]] = []
    labels: list[str] = []
    for node in nodes:
        layer = node.layer
        name = layer.name
        if len(calls[id(layer)]) > 1:
            name += f"  (call {calls[id(layer)].index(node) + 1})"
        boxes.append({"lines": [(name, "name"), (_constructor_call(layer), "class"),
                                (_shape_line(node), "shape")],
                      "fill": fills[type(layer).__name__], "output": False})
        for t in node.inputs:
            producer = index[id(t.node)]
            edges.append((producer, len(boxes) - 1))
            labels.append(f"[{t.index}]" if len(t.node.outputs) > 1 else "")

    losses = _compiled_losses(model)
    for k, (t, out_name) in enumerate(zip(model.outputs, model.output_names)):
        lines: list[Line] = [(f"output {out_name}", "name")]
        if losses is not None:
            loss_name, weight = losses[k]
            lines.append(("no loss" if loss_name is None
                          else f"loss {loss_name} × {weight:g}", "class"))
        boxes.append({"lines": lines, "fill": _OUTPUT_FILL, "output": True})
        edges.append((index[id(t.node)], len(boxes) - 1))
        labels.append(f"[{t.index}]" if len(t.node.outputs) > 1 else "")
    return boxes, edges, labels


def _compiled_losses(model: TrainableModel) -> list[tuple[str | None, float]] | None:
    """``[(loss name or None, weight)]`` per output, or None before ``compile``."""
    if not getattr(model, "compiled", False):
        return None
    # No public accessor for the compiled losses exists yet (mlstm.io reads the same).
    return [(None if loss is None else loss.name, float(weight))
            for loss, weight in zip(model._losses, model._loss_weights)]


def _format_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _constructor_call(layer: Layer) -> str:
    """``Dense(1, activation='sigmoid')``: scalar required arguments, then what differs
    from the constructor's defaults (shapes are left to the shape line)."""
    config = layer.get_config()
    try:
        parameters: Mapping[str, inspect.Parameter] = inspect.signature(
            type(layer).__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    parts: list[str] = []
    for key, value in config.items():
        if key in _HIDDEN_OPTIONS or key.endswith("_initializer"):
            continue
        param = parameters.get(key)
        if param is None or param.default is inspect.Parameter.empty:
            if not isinstance(value, (list, tuple, dict)):
                parts.insert(sum(1 for p in parts if "=" not in p), _format_value(value))
            continue
        # Keras' activation=None means linear: the config says "linear".
        if (value == param.default or isinstance(value, dict)
                or (key == "activation" and param.default is None and value == "linear")):
            continue
        parts.append(key if value is True else f"{key}={_format_value(value)}")
    text, shown = type(layer).__name__ + "(", 0
    for part in parts:
        if len(text) + len(part) > _MAX_OPTIONS_CHARS and shown:
            return text + ", …)"
        text += (", " if shown else "") + part
        shown += 1
    return text + ")"


def _format_shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in (None,) + tuple(shape)) + ")"


def _shape_line(node: Node) -> str:
    shapes = [_format_shape(t.shape) for t in node.outputs]
    text = (f"{len(shapes)} × {shapes[0]}" if len(shapes) > 1 and len(set(shapes)) == 1
            else ", ".join(shapes))
    params = node.layer.count_params()
    if params:
        text += f"  {params:,} params"
    if any(getattr(t, "has_mask", False) for t in node.outputs):
        text += "  masked"
    return text


def _title_lines(model: TrainableModel) -> list[Line]:
    n_params = model.count_params()
    lines = [(f"model {model.name!r}", "name"),
             (f"{len(model.inputs)} input{'s' * (len(model.inputs) != 1)}, "
              f"{len(model.outputs)} output{'s' * (len(model.outputs) != 1)}, "
              f"{len(model.layers)} layers, {n_params:,} parameters, {model.dtype}", "class")]
    losses = _compiled_losses(model)
    if losses is not None:
        terms = [f"{weight:g} · {loss}({name})" if weight != 1 else f"{loss}({name})"
                 for name, (loss, weight) in zip(model.output_names, losses)
                 if loss is not None]
        lines.append(("loss = " + " + ".join(terms), "class"))
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            config = optimizer.get_config()
            rate = config.get("learning_rate")
            lines.append((f"optimizer {type(optimizer).__name__}"
                          + (f"(learning_rate={rate:g})" if isinstance(rate, float) else ""),
                          "class"))
    return lines
