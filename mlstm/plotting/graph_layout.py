"""A layered (Sugiyama-style) layout of a directed acyclic graph, in plain Python.

:func:`layered_layout` puts each item on a row given by its depth, routes every edge that
spans several rows through one point per row it crosses (so a long edge goes around the
boxes between its ends instead of through them), orders each row to keep edges from
crossing (barycenter sweeps) and places the items left to right as close to the middle of
their neighbours as the spacing allows. Nothing here knows about models or matplotlib:
:mod:`mlstm.plotting.model_plot` measures the boxes and draws.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["graph_depths", "layered_layout", "LayeredLayout"]

#: Width of the invisible point an edge passes through on a row it crosses (inches).
EDGE_POINT_WIDTH = 0.12
#: Barycenter sweeps (down and up) for the order, and placement sweeps for the positions.
ORDER_SWEEPS = 6
PLACE_SWEEPS = 8


def graph_depths(n_items: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Row of every item: its longest path from a source, sources pulled down to just above
    their first consumer (an input used only deep in the graph sits next to its use).

    Parameters
    ----------
    n_items : int
        Items are ``0 .. n_items - 1`` in a topological order (producers first).
    edges : list of (int, int)
        ``(producer, consumer)``; ``producer < consumer``.

    Returns
    -------
    list of int
    """
    parents: list[list[int]] = [[] for _ in range(n_items)]
    children: list[list[int]] = [[] for _ in range(n_items)]
    for u, v in edges:
        if not 0 <= u < v < n_items:
            raise ValueError(f"edge {(u, v)} is not from an earlier to a later item "
                             f"of {n_items}")
        parents[v].append(u)
        children[u].append(v)
    depth = [0] * n_items
    for v in range(n_items):
        if parents[v]:
            depth[v] = 1 + max(depth[u] for u in parents[v])
    for u in reversed(range(n_items)):
        if not parents[u] and children[u]:
            depth[u] = min(depth[v] for v in children[u]) - 1
    return depth


class LayeredLayout:
    """Where everything goes, in inches, y growing downwards.

    Attributes
    ----------
    x : list of float
        Centre of each item.
    row_of : list of int
    row_top, row_bottom : list of float
        Vertical extent of each row (the tallest item's height).
    routes : list of list of (float, float)
        For each edge, the points it passes through on the rows between its ends
        (two per crossed row: where it enters and leaves the row), top to bottom.
    width, height : float
        Extent of the drawing, margins included.
    """

    def __init__(self, x: list[float], row_of: list[int], row_top: list[float],
                 row_bottom: list[float], routes: list[list[tuple[float, float]]],
                 width: float, height: float) -> None:
        self.x, self.row_of = x, row_of
        self.row_top, self.row_bottom = row_top, row_bottom
        self.routes, self.width, self.height = routes, width, height


def _isotonic(values: Sequence[float]) -> list[float]:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []               # [sum, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] > blocks[-1][0] * blocks[-2][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out += [s / c] * int(c)
    return out


def _place_row(desired: Sequence[float], widths: Sequence[float], gap: float) -> list[float]:
    """Centres as close (least squares) to ``desired`` as the order and spacing allow."""
    offsets = [0.0]
    for a, b in zip(widths, widths[1:]):
        offsets.append(offsets[-1] + (a + b) / 2 + gap)
    fitted = _isotonic([d - s for d, s in zip(desired, offsets)])
    return [f + s for f, s in zip(fitted, offsets)]


def _straighten_chains(row_items: list[list[int]], x: dict[int, float], width_of: list[float],
                       up: dict[int, list[int]], down: dict[int, list[int]],
                       gap: float) -> None:
    """Put a single child right below its single parent (or the parent above the child)
    wherever the neighbours on the row leave room: straight arrows for chains."""
    slot = {item: (r, j) for r, items in enumerate(row_items) for j, item in enumerate(items)}

    def fits(item: int, pos: float) -> bool:
        r, j = slot[item]
        items = row_items[r]
        half = width_of[item] / 2
        if j > 0 and x[items[j - 1]] + width_of[items[j - 1]] / 2 + gap > pos - half + 1e-9:
            return False
        if (j + 1 < len(items)
                and x[items[j + 1]] - width_of[items[j + 1]] / 2 - gap < pos + half - 1e-9):
            return False
        return True

    links = [(a, down[a][0]) for a in down
             if len(down[a]) == 1 and len(up.get(down[a][0], [])) == 1]
    for pairs in (links, links[::-1]):
        for parent, child in pairs:
            if abs(x[parent] - x[child]) < 1e-9:
                continue
            if fits(child, x[parent]):
                x[child] = x[parent]
            elif fits(parent, x[child]):
                x[parent] = x[child]


def layered_layout(widths: Sequence[float], heights: Sequence[float],
                   edges: Sequence[tuple[int, int]], depths: Sequence[int] | None = None,
                   h_gap: float = 0.35, v_gap: float = 0.5, margin: float = 0.25,
                   top: float = 0.0) -> LayeredLayout:
    """Lay out items of the given sizes (inches) connected by ``edges``.

    Parameters
    ----------
    widths, heights : list of float
        Box of each item; items are in a topological order.
    edges : list of (int, int)
        ``(producer, consumer)`` pairs.
    depths : list of int, optional
        Row of each item; :func:`graph_depths` when omitted. A consumer must be on a lower
        row than its producer.
    h_gap, v_gap : float
        Space between neighbours on a row, and between rows.
    margin : float
        Around the drawing.
    top : float
        Space kept free above the first row (for a title).

    Returns
    -------
    LayeredLayout
    """
    n = len(widths)
    depths = graph_depths(n, edges) if depths is None else list(depths)
    for u, v in edges:
        if depths[v] <= depths[u]:
            raise ValueError(f"edge {(u, v)} does not go down: rows {depths[u]} -> {depths[v]}")
    shift = min(depths, default=0)
    depths = [d - shift for d in depths]
    n_rows = max(depths, default=-1) + 1

    # Items on rows, plus one point per crossed row for every long edge.
    row_items: list[list[int]] = [[] for _ in range(n_rows)]
    for k in range(n):
        row_items[depths[k]].append(k)
    width_of = list(widths)
    chains: list[list[int]] = []                 # per edge: [u, points..., v]
    up: dict[int, list[int]] = {}                 # neighbours of every item and point
    down: dict[int, list[int]] = {}
    for u, v in edges:
        chain = [u]
        for row in range(depths[u] + 1, depths[v]):
            point = len(width_of)
            width_of.append(EDGE_POINT_WIDTH)
            row_items[row].append(point)
            chain.append(point)
        chain.append(v)
        chains.append(chain)
        for a, b in zip(chain, chain[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values)

    # Order: barycenter of the neighbours' positions in the row above (down sweeps) or
    # below (up sweeps); a stable sort keeps the topological order on ties.
    for sweep in range(ORDER_SWEEPS):
        going_down = sweep % 2 == 0
        rows = range(1, n_rows) if going_down else range(n_rows - 2, -1, -1)
        for r in rows:
            ref = row_items[r - 1] if going_down else row_items[r + 1]
            rank = {item: j for j, item in enumerate(ref)}
            neighbours = up if going_down else down
            keys: dict[int, float] = {}
            for j, item in enumerate(row_items[r]):
                linked = [rank[o] for o in neighbours.get(item, []) if o in rank]
                keys[item] = mean(linked) if linked else j * len(ref) / max(1, len(row_items[r]))
            row_items[r].sort(key=lambda item: keys[item])

    # Positions: start packed around 0, then move each row towards its neighbours' middle.
    x: dict[int, float] = {}
    for items in row_items:
        for item, pos in zip(items, _place_row([0.0] * len(items),
                                                [width_of[i] for i in items], h_gap)):
            x[item] = pos
    # The sweeps alternate down (towards the parents) and up (towards the children); the
    # one before last pulls both ways, and the last one goes down again so that a single
    # child (an output's badge, a straight chain) ends right below its parent.
    for sweep in range(PLACE_SWEEPS):
        both = sweep == PLACE_SWEEPS - 2
        going_down = sweep % 2 == 0 or sweep == PLACE_SWEEPS - 1
        rows = range(n_rows) if going_down else range(n_rows - 1, -1, -1)
        for r in rows:
            items = row_items[r]
            desired: list[float] = []
            for item in items:
                linked = (up.get(item, []) + down.get(item, []) if both
                          else (up if going_down else down).get(item, []))
                desired.append(mean([x[o] for o in linked]) if linked else x[item])
            for item, pos in zip(items, _place_row(desired, [width_of[i] for i in items],
                                                   h_gap)):
                x[item] = pos

    _straighten_chains(row_items, x, width_of, up, down, h_gap)

    left = min((x[i] - width_of[i] / 2 for i in x), default=0.0)
    right = max((x[i] + width_of[i] / 2 for i in x), default=0.0)
    for item in x:
        x[item] += margin - left

    row_top: list[float] = []
    row_bottom: list[float] = []
    y = margin + top
    for items in row_items:
        tallest = max((heights[i] for i in items if i < n), default=0.0)
        row_top.append(y)
        row_bottom.append(y + tallest)
        y += tallest + v_gap
    routes: list[list[tuple[float, float]]] = []
    for chain in chains:
        route: list[tuple[float, float]] = []
        for point in chain[1:-1]:
            r = depths[chain[0]] + len(route) // 2 + 1
            route += [(x[point], row_top[r]), (x[point], row_bottom[r])]
        routes.append(route)
    return LayeredLayout(x=[x[k] for k in range(n)], row_of=depths, row_top=row_top,
                         row_bottom=row_bottom, routes=routes,
                         width=right - left + 2 * margin, height=y - v_gap + margin)
