"""plot_model draws any model (single input, two inputs and two compiled outputs, stacked,
states and a shared layer, 20 layers), says what it draws (checked in SVG text), keeps
boxes apart and long edges out of boxes, and refuses what it cannot draw."""
import struct
from xml.etree import ElementTree

import pytest

import mlstm
from mlstm import LSTM, Dense, Input, Masking, Model, concatenate
from mlstm.plotting import plot_model
from mlstm.plotting.graph_layout import graph_depths, layered_layout

matplotlib = pytest.importorskip("matplotlib")


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def single_input():
    x = Input(shape=(7, 3), name="x")
    y = Dense(1, name="y")(LSTM(4, name="lstm")(x))
    return Model(x, y, name="single")


def two_in_two_out(compiled=True):
    x1, x2 = Input(shape=(10, 8), name="x1"), Input(shape=(10, 8), name="x2")
    merged = concatenate([LSTM(16, name="lstm_a")(x1), LSTM(16, name="lstm_b")(x2)],
                         name="merged")
    out1 = Dense(1, name="out1")(merged)
    out2 = Dense(1, activation="sigmoid", name="out2")(merged)
    model = Model([x1, x2], [out1, out2], name="seed")
    if compiled:
        model.compile(optimizer=mlstm.optimizers.Adam(1e-3),
                      loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    return model


def stacked():
    x = Input(shape=(12, 4), name="x")
    h = LSTM(8, return_sequences=True, name="lstm_1")(Masking(name="mask")(x))
    h = LSTM(8, return_sequences=True, go_backwards=True, name="lstm_2")(h)
    model = Model(x, Dense(3, activation="tanh", name="per_step")(h), name="stacked")
    model.compile(loss="mse")
    return model


def states_and_shared():
    enc, dec, aux = (Input(shape=(6, 3), name="enc_in"), Input(shape=(6, 2), name="dec_in"),
                     Input(shape=(4,), name="aux"))
    seq, h, c = LSTM(5, return_state=True, return_sequences=True, name="encoder")(enc)
    shared = Dense(4, name="shared_dense")
    a = shared(LSTM(5, name="decoder")(dec, initial_state=[h, c]))
    b = shared(LSTM(5, name="on_seq")(seq))
    merged = concatenate([a, b, aux], name="merged")
    outs = [Dense(1, name="value")(merged), Dense(2, name="aux_out")(aux)]
    model = Model([enc, dec, aux], outs, name="states")
    model.compile(loss={"value": "mse"})
    return model


def deep(n_layers=20):
    x = Input(shape=(5, 3), name="x")
    h = x
    for k in range(n_layers - 2):
        h = LSTM(4, return_sequences=k < n_layers - 3, name=f"lstm_{k}")(h)
    return Model(x, Dense(1, name="y")(h), name="deep")


@pytest.mark.parametrize("build", [single_input, two_in_two_out, stacked, states_and_shared])
def test_writes_a_png(build, tmp_path):
    out = plot_model(build(), tmp_path / "model.png")
    assert out == tmp_path / "model.png"
    width, height = _png_size(out)
    assert 200 < width < 3000 and 300 < height < 3000, (width, height)


def test_twenty_layers_stay_readable(tmp_path):
    """Text keeps its size (the layout is in inches): the picture grows instead."""
    model = deep(20)
    assert len(model.layers) == 20
    width, height = _png_size(plot_model(model, tmp_path / "deep.png", dpi=100))
    assert height > 20 * 0.6 * 100                # at least 0.6 inch per layer row
    assert width < 800                            # a chain stays one column wide


def _svg_text(model, path):
    """Every text drawn, one per line (SVG with text kept as text, not as paths)."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        plot_model(model, path)
    root = ElementTree.parse(path).getroot()
    return "\n".join("".join(el.itertext()) for el in root.iter("{http://www.w3.org/2000/svg}text"))


def test_shows_classes_names_shapes_losses_and_weights(tmp_path):
    text = _svg_text(two_in_two_out(), tmp_path / "seed.svg")
    for expected in ["lstm_a", "lstm_b", "LSTM(16)", "Concatenate()", "merged",
                     "Dense(1, activation='sigmoid')", "(None, 10, 8)",
                     "(None, 32)", "1,600 params", "output out1", "output out2",
                     "loss mean_squared_error × 0.7", "loss binary_crossentropy × 0.3",
                     "0.7 · mean_squared_error(out1) + 0.3 · binary_crossentropy(out2)",
                     "optimizer Adam(learning_rate=0.001)", "2 inputs, 2 outputs"]:
        assert expected in text, f"{expected!r} not drawn"
    assert "activation='linear'" not in text   # a default is not worth the room


def test_uncompiled_model_shows_outputs_without_losses(tmp_path):
    text = _svg_text(two_in_two_out(compiled=False), tmp_path / "seed.svg")
    assert "output out1" in text and "output out2" in text
    assert "loss" not in text


def test_states_shared_layers_and_outputs_without_loss(tmp_path):
    text = _svg_text(states_and_shared(), tmp_path / "states.svg")
    for expected in ["return_sequences", "return_state", "shared_dense  (call 1)",
                     "shared_dense  (call 2)", "[1]", "[2]", "no loss",
                     "(None, 6, 5), (None, 5), (None, 5)"]:
        assert expected in text, f"{expected!r} not drawn"
    text = _svg_text(stacked(), tmp_path / "stacked.svg")
    assert "go_backwards" in text and "masked" in text


def test_layout_keeps_boxes_apart_and_long_edges_outside_boxes():
    widths = [1.0, 2.0, 1.5, 1.0, 1.0, 1.2, 0.8]
    heights = [0.6] * 7
    # 0 -> 1 -> 3 -> 5 and 2 -> 5 (long), 0 -> 4, 4 -> 6, 2 -> 6 (long)
    edges = [(0, 1), (1, 3), (3, 5), (2, 5), (0, 4), (4, 6), (2, 6)]
    layout = layered_layout(widths, heights, edges, h_gap=0.3)
    rows = {}
    for k, r in enumerate(layout.row_of):
        rows.setdefault(r, []).append(k)
    for items in rows.values():
        spans = sorted((layout.x[k] - widths[k] / 2, layout.x[k] + widths[k] / 2)
                       for k in items)
        for (_, right), (left, _) in zip(spans, spans[1:]):
            assert left - right >= 0.3 - 1e-9, spans
    for (u, v), route in zip(edges, layout.routes):
        crossed = range(layout.row_of[u] + 1, layout.row_of[v])
        assert len(route) == 2 * len(crossed)
        for (x, _), r in zip(route[::2], crossed):
            for k in rows.get(r, []):
                assert not layout.x[k] - widths[k] / 2 < x < layout.x[k] + widths[k] / 2, (
                    f"edge {(u, v)} passes through box {k} on row {r}")
    assert min(layout.x[k] - widths[k] / 2 for k in range(7)) >= 0
    assert max(layout.x[k] + widths[k] / 2 for k in range(7)) <= layout.width + 1e-9


def test_an_input_used_deep_sits_just_above_its_use():
    # 0 -> 1 -> 2 -> 3, and source 4 feeds 3 only: it goes on row 2, not row 0.
    depths = graph_depths(5, [(0, 1), (1, 2), (2, 4), (3, 4)])
    assert depths == [0, 1, 2, 2, 3]


def test_refuses_what_it_cannot_draw(tmp_path):
    model = single_input()
    with pytest.raises(TypeError, match="model must be an mlstm.Model, got LSTM"):
        plot_model(LSTM(3), tmp_path / "a.png")
    with pytest.raises(TypeError, match="model must be an mlstm.Model, got str"):
        plot_model("model.keras", tmp_path / "a.png")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        plot_model(model, 3)
    with pytest.raises(ValueError, match=r"must end in one of \.png, \.svg, \.pdf, got '\.jpg'"):
        plot_model(model, tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="got 'no suffix'"):
        plot_model(model, tmp_path / "picture")
    missing = tmp_path / "no_such_dir" / "a.png"
    with pytest.raises(ValueError, match="no_such_dir' of path .* does not exist"):
        plot_model(model, missing)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        plot_model(model, folder)
    for dpi in (0, -5, float("nan"), "120", True):
        with pytest.raises(ValueError, match="dpi must be a positive number"):
            plot_model(model, tmp_path / "a.png", dpi=dpi)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]   # nothing written


def test_layout_refuses_edges_that_do_not_go_down():
    with pytest.raises(ValueError, match="is not from an earlier to a later item"):
        graph_depths(3, [(2, 1)])
    with pytest.raises(ValueError, match="does not go down"):
        layered_layout([1, 1], [1, 1], [(0, 1)], depths=[1, 1])


def test_pdf_and_svg(tmp_path):
    model = stacked()
    assert plot_model(model, tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in plot_model(model, str(tmp_path / "m.svg")).read_bytes()[:2000]


def test_model_plot_is_plot_model(tmp_path):
    pytest.importorskip("matplotlib")
    from mlstm.demo import build_demo_model
    path = tmp_path / "demo.png"
    assert build_demo_model().plot(str(path)) is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
