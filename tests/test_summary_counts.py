"""Model.summary counts parameters as Keras' summary does: BatchNormalization's moving
statistics and the weights of non-trainable layers are non-trainable."""
from __future__ import annotations

import io
import re
from contextlib import redirect_stdout

import pytest

import mlstm
from mlstm import LSTM, Dense, Input, Model
from mlstm.layers import BatchNormalization, Bidirectional, TimeDistributed


def _model() -> Model:
    x = Input((5, 4), name="x")
    h = BatchNormalization(name="bn_in")(x)
    h = Bidirectional(LSTM(3, return_sequences=True, name="lstm"), name="bi")(h)
    h = TimeDistributed(Dense(2, name="td_dense"), name="td")(h)
    h = BatchNormalization(name="bn_mid")(h)
    h = LSTM(3, name="last")(h)
    frozen = Dense(2, name="frozen", trainable=False)(h)
    y = Dense(1, name="out")(frozen)
    model = Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    return model


def _counts(text: str) -> dict[str, int]:
    found = {}
    for key in ("Total", "Trainable", "Non-trainable"):
        match = re.search(rf"^\s*{key} params: ([\d,]+)", text, re.MULTILINE)
        assert match, f"no '{key} params' line in:\n{text}"
        found[key] = int(match.group(1).replace(",", ""))
    return found


def test_summary_counts_moving_statistics_as_non_trainable():
    model = _model()
    lines = []
    model.summary(print_fn=lines.append)
    counts = _counts("\n".join(lines))
    # by hand: BN 4 features (gamma, beta | 2 moving), BiLSTM 2 x 4*3*(4+3+1), TD Dense 6*2+2,
    # BN 2 features, LSTM 4*3*(2+3+1), frozen Dense 3*2+2, out 2+1
    trainable = 8 + 2 * 96 + 14 + 4 + 72 + 3
    non_trainable = 8 + 4 + 8
    assert counts == {"Total": trainable + non_trainable, "Trainable": trainable,
                      "Non-trainable": non_trainable}
    assert model.count_params() == counts["Total"]
    assert model.count_trainable_params() == trainable


@pytest.mark.keras
def test_summary_counts_match_keras_summary():
    from mlstm.interop.keras import to_keras

    model = _model()
    theirs = to_keras(model)
    out = io.StringIO()
    with redirect_stdout(out):
        theirs.summary()
    keras_counts = _counts(out.getvalue())
    lines = []
    model.summary(print_fn=lines.append)
    assert _counts("\n".join(lines)) == keras_counts
    assert keras_counts["Non-trainable"] > 0
