"""model.save by extension, save_weights / load_weights, load_model's pointers (issue 14)."""
import zipfile

import sys

import numpy as np
import pytest
from _keras_twin import data, float64, two_output_model

import mlstm
from mlstm.optimizers import Adam


def _trained():
    x, y1, y2 = data()
    model = two_output_model()
    model.compile(Adam(0.01), loss=["mse", "binary_crossentropy"], loss_weights=[0.5, 2.0])
    model.fit(x, [y1, y2], epochs=1, batch_size=4, seed=0, verbose=0)
    return model, x


@pytest.mark.keras
def test_save_keras_loads_in_keras_with_the_same_predictions(tmp_path):
    import keras
    model, x = _trained()
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert "config.json" in archive.namelist()
    with float64(keras):
        kmodel = keras.saving.load_model(path)
        theirs = kmodel.predict(x, verbose=0)
    for a, b in zip(model.predict(x), theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # Under Keras' default float32 floatx the layers still load as float64, but predict
    # rounds the float64 inputs to floatx first: equal to float32 rounding of x
    plain = keras.saving.load_model(path).predict(x, verbose=0)
    for a, b in zip(model.predict(x), plain):
        assert b.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    back = mlstm.load_keras(path)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"Keras file; load it with mlstm\.load_keras"):
        mlstm.load_model(path)


def test_save_keras_without_keras_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)     # "import keras" now fails
    model, _ = _trained()
    with pytest.raises(ValueError, match="needs the keras extra.*\\.npz"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("name, message", [
    ("m.h5", "cannot tell the format"), ("m", "cannot tell the format"),
    ("m.pkl", "'.npz'.*'.keras'"), ("m.weights.npz", "save_weights"),
])
def test_unknown_extensions_are_refused(tmp_path, name, message):
    model, _ = _trained()
    with pytest.raises(ValueError, match=message):
        model.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_npz_is_mlstm_format(tmp_path):
    model, x = _trained()
    model.save(tmp_path / "m.npz")
    back = mlstm.load_model(tmp_path / "m.npz")
    assert back.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model.predict(x), back.predict(x)):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_weights(tmp_path):
    model, x = _trained()
    path = tmp_path / "m.weights.npz"
    model.save_weights(path)
    with np.load(path, allow_pickle=False) as npz:        # plain arrays and JSON
        assert sorted(npz.files) == ["mlstm.json"] + [f"w{k}" for k in range(7)]
    other = two_output_model(seed=5)
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="must end with '.weights.npz'"):
        model.save_weights(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="holds weights only.*load_weights"):
        mlstm.load_model(path)
    model.save(tmp_path / "whole.npz")
    with pytest.raises(ValueError, match="whole model: mlstm.load_model"):
        other.load_weights(tmp_path / "whole.npz")
    x_in = mlstm.Input(shape=(4, 3), name="x", dtype="float64")
    smaller = mlstm.Model(x_in, mlstm.Dense(1, name="out1")(mlstm.LSTM(3, name="lstm")(x_in)))
    before = smaller.get_weights()
    with pytest.raises(ValueError, match="do not match the model's"):
        smaller.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, smaller.get_weights()))
    single = two_output_model()
    single32 = type(single).from_config(single.get_config(), dtype="float32")
    with pytest.raises(ValueError, match="float64.*float32"):
        single32.load_weights(path)
