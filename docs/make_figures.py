"""Draw every picture in docs/figures/ (matplotlib only): ``python docs/make_figures.py``.

* ``lstm_cell.png``: one LSTM step with its gates, labelled with the symbols of docs/lstm.md
  (Keras' column blocks i, f, c, o of W, U and b);
* ``bptt_unrolled.png``: the LSTM unrolled over four steps with the forward values and the
  backpropagation-through-time gradients, one step masked;
* ``seed_model.png``: the seed article's two-input, two-output model, drawn by
  :func:`mlstm.plotting.plot_model` from the model itself.

``python docs/make_figures.py --out DIR [name ...]`` writes elsewhere or only some.
The pictures are checked in; run this after changing one of them and look at the result.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

FIGURES = Path(__file__).resolve().parent / "figures"
DPI = 110

# One colour per gate, the same in the z blocks, the gate boxes and the equations.
GATE = {"i": "#4c8bd6", "f": "#d9534f", "c": "#3a9a5b", "o": "#8e5cc2"}
FORWARD, BACKWARD, MUTED = "#222222", "#d0641a", "#666666"


def _canvas(width, height):
    """A figure whose data units are inches, y up."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def _box(ax, cx, cy, w, h, fill, edge="#333333", lw=1.0, hatch=None, alpha=1.0):
    ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                                boxstyle="round,pad=0,rounding_size=0.08", facecolor=fill,
                                edgecolor=edge, linewidth=lw, hatch=hatch, alpha=alpha))


def _node(ax, cx, cy, symbol, r=0.16):
    ax.add_patch(Circle((cx, cy), r, facecolor="white", edgecolor="#333333", linewidth=1.1,
                        zorder=3))
    ax.text(cx, cy, symbol, ha="center", va="center", fontsize=12, zorder=4)


def _wire(ax, points, color=FORWARD, lw=1.3, arrow=True, dashed=False, curved=False):
    """A polyline (or, with ``curved``, S-curves with vertical ends) ending in an arrow."""
    verts, codes = [points[0]], [MplPath.MOVETO]
    for p, q in zip(points, points[1:]):
        if curved:
            mid = (p[1] + q[1]) / 2
            verts += [(p[0], mid), (q[0], mid), q]
            codes += [MplPath.CURVE4] * 3
        else:
            verts.append(q)
            codes.append(MplPath.LINETO)
    ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes),
                                 arrowstyle="-|>" if arrow else "-", mutation_scale=11,
                                 color=color, linewidth=lw, shrinkA=0, shrinkB=0,
                                 linestyle=(0, (4, 2.5)) if dashed else "-", zorder=2))


# --------------------------------------------------------------------------- the cell
def lstm_cell(path):
    """One LSTM step (docs/lstm.md, "Forward pass"), symbols as on that page."""
    fig, ax = _canvas(8.4, 8.3)
    ax.set_ylim(-2.75, 5.55)                      # the equations go below y = 0
    _box(ax, 3.85, 3.05, 6.3, 4.5, "#f7f7f4", edge="#999999")
    ax.text(0.85, 5.12, "one step t  (mlstm.ops.lstm.lstm_step)", fontsize=9, color=MUTED)

    # Cell state along the top: c_{t-1} -> (x f_t) -> (+ i_t g_t) -> c'_t
    cy = 4.55
    _wire(ax, [(0.15, cy), (2.04, cy)])
    _node(ax, 2.2, cy, r"$\times$")
    _wire(ax, [(2.36, cy), (3.74, cy)])
    _node(ax, 3.9, cy, "+")
    _wire(ax, [(4.06, cy), (8.15, cy)])
    ax.text(0.15, cy + 0.17, r"$c_{t-1}$", fontsize=13)
    ax.text(7.3, cy + 0.17, r"$c'_t$", fontsize=13)

    # z_t: x_t W + h_{t-1} U + b, four column blocks in Keras' order i, f, c, o.
    zy, zw, left = 1.3, 1.05, 1.4
    centres = {}
    for k, gate in enumerate("ifco"):
        cx = left + zw * (k + 0.5)
        centres[gate] = cx
        _box(ax, cx, zy, zw, 0.5, GATE[gate], alpha=0.35)
        ax.text(cx, zy, rf"$z^{gate}_t$", ha="center", va="center", fontsize=13)
    ax.text(left + 2 * zw, zy - 0.47, r"$z_t = x_t W + h_{t-1} U + b$   (N, 4H): blocks i, f, c, o",
            ha="center", va="center", fontsize=10.5)
    _wire(ax, [(0.15, zy), (left, zy)])
    ax.text(0.15, zy + 0.15, r"$h_{t-1}$", fontsize=13)
    _wire(ax, [(1.0, 0.15), (1.0, 0.75), (1.5, 0.75), (1.5, zy - 0.25)])
    ax.text(0.82, 0.28, r"$x_t$", fontsize=13, ha="right")

    # The gates: f, i, g, o left to right (f is used first on the cell line).
    gy = 2.65
    gates = {"f": (2.2, r"$\sigma$", r"$f_t$"), "i": (3.2, r"$\sigma$", r"$i_t$"),
             "c": (4.3, r"$\varphi$", r"$g_t$"), "o": (5.4, r"$\sigma$", r"$o_t$")}
    for gate, (gx, symbol, label) in gates.items():
        _wire(ax, [(centres[gate], zy + 0.25), (gx, gy - 0.27)], color=GATE[gate],
              curved=True)
        _box(ax, gx, gy, 0.62, 0.52, GATE[gate], alpha=0.9)
        ax.text(gx, gy, symbol, ha="center", va="center", fontsize=15, color="white")
    # f_t up to the cell line
    _wire(ax, [(2.2, gy + 0.26), (2.2, cy - 0.16)], color=GATE["f"])
    ax.text(2.28, 3.55, r"$f_t$", fontsize=13, color=GATE["f"])
    # i_t * g_t, then up into the sum
    _node(ax, 3.9, 3.6, r"$\times$")
    _wire(ax, [(3.2, gy + 0.26), (3.2, 3.6), (3.74, 3.6)], color=GATE["i"])
    ax.text(2.95, 3.1, r"$i_t$", fontsize=13, color=GATE["i"])
    _wire(ax, [(4.3, gy + 0.26), (4.3, 3.6), (4.06, 3.6)], color=GATE["c"])
    ax.text(4.38, 3.1, r"$g_t$", fontsize=13, color=GATE["c"])
    _wire(ax, [(3.9, 3.76), (3.9, cy - 0.16)])
    ax.text(3.98, 4.0, r"$i_t \odot g_t$", fontsize=11)
    # h'_t = o_t * phi(c'_t)
    _wire(ax, [(6.4, cy), (6.4, 3.85)])
    _box(ax, 6.4, 3.6, 0.55, 0.45, "#eeeeee")
    ax.text(6.4, 3.6, r"$\varphi$", ha="center", va="center", fontsize=15)
    _wire(ax, [(6.4, 3.375), (6.4, gy + 0.16)])
    ax.text(6.48, 3.05, r"$\varphi(c'_t)$", fontsize=11)
    _node(ax, 6.4, gy, r"$\times$")
    _wire(ax, [(5.71, gy), (6.24, gy)], color=GATE["o"])
    ax.text(5.8, gy + 0.1, r"$o_t$", fontsize=13, color=GATE["o"])
    _wire(ax, [(6.4, gy - 0.16), (6.4, zy), (8.15, zy)])
    ax.text(7.3, zy + 0.15, r"$h'_t$", fontsize=13)
    ax.text(8.15, zy - 0.12, "output $y_t$ and the\nnext step's $h_{t-1}$", fontsize=9,
            color=MUTED, ha="right", va="top")
    ax.text(8.15, cy - 0.12, "next step's $c_{t-1}$", fontsize=9, color=MUTED, ha="right",
            va="top")

    # The equations, coloured like the gates, in two columns below the diagram.
    columns = [
        [(r"$z_t = x_t W + h_{t-1} U + b$", FORWARD),
         (r"$\quad\ = [\,z^i_t \mid z^f_t \mid z^c_t \mid z^o_t\,]$", FORWARD),
         (r"$c'_t = f_t \odot c_{t-1} + i_t \odot g_t$", FORWARD),
         (r"$h'_t = o_t \odot \varphi(c'_t)$", FORWARD)],
        [(r"$i_t = \sigma(z^i_t)$", GATE["i"]), (r"$f_t = \sigma(z^f_t)$", GATE["f"]),
         (r"$g_t = \varphi(z^c_t)$", GATE["c"]), (r"$o_t = \sigma(z^o_t)$", GATE["o"])],
    ]
    for x0, column in zip((0.3, 4.6), columns):
        for k, (text, color) in enumerate(column):
            ax.text(x0, -0.35 - k * 0.42, text, fontsize=13, color=color, va="center")
    notes = ("$\\sigma$: recurrent_activation (sigmoid),  $\\varphi$: activation (tanh),  "
             "$\\odot$ and $\\times$: elementwise product\n"
             "W (D, 4H), U (H, 4H), b (4H,): column blocks i, f, c, o (Keras' order);  "
             "unmasked: $h_t = y_t = h'_t$, $c_t = c'_t$")
    ax.text(0.3, -2.25, notes, fontsize=10.5, color=MUTED, va="center", linespacing=1.6)
    fig.savefig(path, dpi=DPI)


# --------------------------------------------------------------------------- BPTT
def bptt_unrolled(path):
    """Four steps, step 3 masked: forward values (black) and BPTT gradients (orange)."""
    fig, ax = _canvas(9.3, 8.0)
    T, masked = 4, 3
    xs = {t: 1.55 + 2.15 * (t - 1) for t in range(1, T + 1)}
    cell_y, w, h = 4.45, 1.1, 0.95
    y_out, loss_y, x_in = 5.9, 6.9, 2.8
    big, small = 13, 11.5

    for t, cx in xs.items():
        is_masked = t == masked
        _box(ax, cx, cell_y, w, h, "#eeeeee" if is_masked else "#dceefb",
             edge="#bbbbbb" if is_masked else "#333333", hatch="///" if is_masked else None)
        label = {"ha": "center", "va": "center", "bbox": {
            "boxstyle": "round,pad=0.08", "facecolor": "#eeeeee", "edgecolor": "none"}
            if is_masked else None}
        ax.text(cx, cell_y + 0.12, f"step {t}", fontsize=small, weight="bold", **label)
        ax.text(cx, cell_y - 0.15, "$m_%d = 0$" % t if is_masked else "$m_%d = 1$" % t,
                fontsize=small, color=MUTED, **label)
        # input below, output above, the loss on top
        _wire(ax, [(cx - 0.2, x_in + 0.2), (cx - 0.2, cell_y - h / 2)])
        ax.text(cx - 0.2, x_in, f"$x_{t}$", ha="center", va="top", fontsize=big)
        _wire(ax, [(cx + 0.2, cell_y - h / 2), (cx + 0.2, x_in + 0.2)], color=BACKWARD,
              dashed=True)
        ax.text(cx + 0.27, x_in + 0.05, r"$\delta z_%d W^\top%s$" % (t, " = 0" if is_masked
                else ""), ha="left", va="top", fontsize=small, color=BACKWARD)
        if not is_masked:
            _wire(ax, [(cx - 0.2, cell_y + h / 2), (cx - 0.2, y_out - 0.22)])
        ax.text(cx, y_out, f"$y_{t}$", ha="center", va="center", fontsize=big)
        _wire(ax, [(cx - 0.2, y_out + 0.22), (cx - 0.2, loss_y - 0.2)])
        ax.text(cx, loss_y, f"$L_{t}$", ha="center", va="center", fontsize=big)
        _wire(ax, [(cx + 0.2, loss_y - 0.2), (cx + 0.2, y_out + 0.22)], color=BACKWARD,
              dashed=True)
        ax.text(cx + 0.27, (loss_y + y_out) / 2, r"$\bar y_%d$" % t, fontsize=big,
                color=BACKWARD, va="center")
        if not is_masked:
            _wire(ax, [(cx + 0.2, y_out - 0.22), (cx + 0.2, cell_y + h / 2)], color=BACKWARD,
                  dashed=True)
            ax.text(cx + 0.27, (y_out + cell_y + h / 2) / 2 - 0.05,
                    r"$\hat y_%d$" % t, fontsize=big, color=BACKWARD, va="center")

    # The masked step repeats the previous output and passes its gradient back to it.
    prev, here = xs[masked - 1], xs[masked]
    _wire(ax, [(prev + 0.32, y_out + 0.07), (here - 0.32, y_out + 0.07)])
    ax.text((prev + here) / 2, y_out + 0.2, f"$y_{masked} = y_{masked - 1}$", ha="center",
            fontsize=small)
    _wire(ax, [(here - 0.32, y_out - 0.1), (prev + 0.32, y_out - 0.1)], color=BACKWARD,
          dashed=True)
    ax.text((prev + here) / 2 + 0.1, y_out - 0.33,
            r"$\hat y_%d = \bar y_%d + \hat y_%d$" % (masked - 1, masked - 1, masked),
            ha="center", va="top", fontsize=small, color=BACKWARD)
    # Through the masked step the state is carried and its gradient passes straight back.
    for dy, color, dashed in ((0.22, FORWARD, False), (-0.22, BACKWARD, True)):
        _wire(ax, [(here - w / 2, cell_y + dy), (here + w / 2, cell_y + dy)], color=color,
              dashed=dashed, arrow=False)

    # States between steps: forward above the middle, gradients below.
    for t in range(1, T + 1):
        x0 = 0.25 if t == 1 else xs[t - 1] + w / 2
        x1 = xs[t] - w / 2
        _wire(ax, [(x0, cell_y + 0.22), (x1, cell_y + 0.22)])
        _wire(ax, [(x1, cell_y - 0.22), (x0, cell_y - 0.22)], color=BACKWARD, dashed=True)
        if t > 1:
            mid = (x0 + x1) / 2
            ax.text(mid, cell_y + 0.34, f"$h_{t - 1}, c_{t - 1}$", ha="center", fontsize=small)
            ax.text(mid, cell_y - 0.34, r"$\delta h_%d, \delta c_%d$" % (t - 1, t - 1),
                    ha="center", va="top", fontsize=small, color=BACKWARD)
    ax.text(0.2, cell_y + 0.34, "$h_0, c_0$", fontsize=small)
    ax.text(0.2, cell_y - 0.34, r"$\delta h_0,$" + "\n" + r"$\delta c_0$", fontsize=small,
            color=BACKWARD, va="top")
    end = xs[T] + w / 2
    _wire(ax, [(end, cell_y + 0.22), (end + 0.45, cell_y + 0.22)])
    ax.text(end + 0.05, cell_y + 0.34, f"$h_{T}, c_{T}$", fontsize=small)

    ax.text(0.2, 7.6, "Forward (solid): each step reads $x_t$ and the previous state.\n"
            "Backward (dashed, BPTT): gradients flow from the losses back to $h_0, c_0$ "
            "and to every $x_t$.", fontsize=small, va="center", linespacing=1.5)
    notes = (
        f"Step {masked} is masked ($m_{masked} = 0$): it carries the state "
        f"($h_{masked} = h_{masked - 1}$, $c_{masked} = c_{masked - 1}$) and repeats the output "
        f"($y_{masked} = y_{masked - 1}$);\n"
        rf"its gates get no gradient ($\delta z_{masked} = 0$), and its gradients pass "
        rf"straight through: $\delta h_{masked - 1} = \delta h_{masked}$, "
        rf"$\delta c_{masked - 1} = \delta c_{masked}$,"
        "\n"
        rf"and $\bar y_{masked}$ joins $\hat y_{masked - 1}$.   Unmasked steps: "
        r"$\delta h_{t-1} = \delta z_t U^\top$, $\delta c_{t-1} = \delta c'_t \odot f_t$."
        "\n"
        r"Parameters: $\partial L/\partial W = \sum_t x_t^\top \delta z_t$,  "
        r"$\partial L/\partial U = \sum_t h_{t-1}^\top \delta z_t$,  "
        r"$\partial L/\partial b = \sum_{t,n} \delta z_{t,n}$."
        "\n"
        "Without return_sequences only the last step has a loss: "
        r"$\bar y_t = 0$ for $t < T$.")
    for k, line in enumerate(notes.splitlines()):   # one text per line: even spacing
        ax.text(0.2, 1.95 - k * 0.38, line, fontsize=10.5, va="center")
    fig.savefig(path, dpi=DPI)


# --------------------------------------------------------------------------- the model
def seed_model(path):
    """The seed article's model (README sizes), compiled as the demo is: plot_model."""
    import mlstm
    from mlstm.plotting import plot_model

    x1 = mlstm.Input(shape=(20, 8), name="x1")
    x2 = mlstm.Input(shape=(20, 8), name="x2")
    merged = mlstm.concatenate([mlstm.LSTM(32, name="lstm_a")(x1),
                                mlstm.LSTM(32, name="lstm_b")(x2)], name="merged")
    out1 = mlstm.Dense(1, name="out1")(merged)
    out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(merged)
    model = mlstm.Model([x1, x2], [out1, out2], name="seed")
    model.compile(optimizer=mlstm.optimizers.Adam(1e-3), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    plot_model(model, path, dpi=DPI)


DRAWINGS = {"lstm_cell": lstm_cell, "bptt_unrolled": bptt_unrolled, "seed_model": seed_model}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"figures to draw, of {list(DRAWINGS)} "
                        "(default: all)")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder (default: %(default)s)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(DRAWINGS))
    if unknown:
        parser.error(f"unknown figures {unknown}; known: {list(DRAWINGS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or DRAWINGS:
        target = args.out / f"{name}.png"
        DRAWINGS[name](target)
        print(f"{target}  {target.stat().st_size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
