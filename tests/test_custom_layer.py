"""A user's own layer, written to the public contract outside the package, works everywhere.

``Scale`` is the example of issue 11 and docs/extending.md: ``build`` + ``add_weight``,
``call(inputs, training) -> (outputs, cache)``, ``backward(d_outputs, cache) -> (d_inputs,
d_params)``. It is registered, so checkpoints find it by name.
"""
import numpy as np
import pytest

import mlstm


@mlstm.register_layer
class Scale(mlstm.Layer):
    """``y = x ⊙ γ`` on the last axis (γ starts at ones)."""

    def build(self, input_shapes):
        (shape,) = input_shapes
        self.add_weight("gamma", (shape[-1],), initializer="ones")

    def call(self, inputs, training=False):
        (x,) = inputs
        return [x * self.params["gamma"]], (x,)

    def backward(self, d_outputs, cache):
        (x,) = cache
        (d,) = d_outputs
        return [d * self.params["gamma"]], {"gamma": (d * x).reshape(-1, x.shape[-1]).sum(0)}


def _model(dtype="float32", seed=0):
    mlstm.set_random_seed(seed)
    x1 = mlstm.Input(shape=(5, 3), name="x1", dtype=dtype)
    x2 = mlstm.Input(shape=(5, 2), name="x2", dtype=dtype)
    a = Scale(name="scale")(mlstm.LSTM(4, name="lstm_a")(x1))
    b = mlstm.LSTM(4, name="lstm_b")(x2)
    merged = mlstm.concatenate([a, b], name="merged")
    out1 = mlstm.Dense(1, name="out1")(merged)
    out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(merged)
    model = mlstm.Model([x1, x2], [out1, out2])
    model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    return model


def _data(n=12, seed=1, dtype="float32"):
    rng = np.random.default_rng(seed)
    x = [rng.normal(size=(n, 5, 3)).astype(dtype), rng.normal(size=(n, 5, 2)).astype(dtype)]
    y = [rng.normal(size=(n, 1)).astype(dtype), (rng.random((n, 1)) > 0.5).astype(dtype)]
    return x, y


def test_scale_is_registered_and_named_from_its_class():
    assert mlstm.registry.LAYERS.get("Scale") is Scale
    assert Scale().name.startswith("scale")


def test_scale_trains_with_fit_and_its_weight_moves():
    model = _model()
    x, y = _data()
    before = model.get_layer("scale").params["gamma"].copy()
    history = model.fit(x, y, epochs=3, batch_size=4, seed=0, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.array_equal(model.get_layer("scale").params["gamma"], before)


def test_scale_per_output_contributions_sum_to_the_gradient():
    model = _model(dtype="float64")
    x, y = _data(dtype="float64")
    total = model.gradients(x, y)
    contributions = model.gradient_contributions(x, y)
    summed = contributions["out1"]["scale/gamma"] + contributions["out2"]["scale/gamma"]
    np.testing.assert_allclose(summed, total["scale/gamma"], rtol=1e-12, atol=1e-15)
    assert np.linalg.norm(total["scale/gamma"]) > 0


def test_scale_passes_the_float64_gradient_check_naming_its_weight():
    model = _model()
    x, y = _data(n=4)
    report = mlstm.gradcheck(model, x, y, method="entries")
    assert "scale/gamma" in report.rows
    assert report.rows["scale/gamma"]["max_rel_error"] < 1e-6
    assert report.max_relative_error < 1e-6
    assert "scale/gamma" in str(report)


def test_scale_wrong_backward_fails_the_gradient_check():
    """The check above is live: a sign error in Scale's weight gradient is caught."""

    @mlstm.register_layer
    class BadScale(Scale):
        def backward(self, d_outputs, cache):
            d_inputs, d_params = super().backward(d_outputs, cache)
            return d_inputs, {"gamma": -d_params["gamma"]}

    mlstm.set_random_seed(0)
    x = mlstm.Input(shape=(5, 3), name="x")
    out = mlstm.Dense(1, name="out")(BadScale(name="bad")(mlstm.LSTM(3, name="l")(x)))
    model = mlstm.Model(x, out)
    model.compile(loss="mse")
    xs, _ = _data(n=4)
    report = mlstm.gradcheck(model, xs[0], np.ones((4, 1), "float32"), method="entries")
    assert report.rows["bad/gamma"]["max_rel_error"] > 0.5


def test_scale_save_and_load_give_identical_predictions(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=4, seed=0, verbose=0)
    path = tmp_path / "scaled.mlstm.npz"
    model.save(str(path))
    loaded = mlstm.load_model(str(path))
    assert isinstance(loaded.get_layer("scale"), Scale)
    for a, b in zip(model.predict(x), loaded.predict(x)):
        np.testing.assert_array_equal(a, b)


def test_scale_is_diagnosed():
    model = _model()
    x, y = _data(n=32)
    report = mlstm.diagnose(model, x, y, steps=3, batch_size=16)
    assert "scale/gamma" in report.shared_names          # both heads depend on it
    per_output = report.static["contributions"]
    assert set(per_output) == {"out1", "out2"}
    assert all(np.isfinite(g["scale/gamma"]).all() for g in per_output.values())
    assert str(report)


def test_scale_masks_pass_through():
    x = mlstm.Input(shape=(4, 2), name="x")
    masked = mlstm.Masking(0.0)(x)
    scaled = Scale(name="s")(masked)
    assert scaled.has_mask
    out = mlstm.LSTM(2, return_sequences=True, name="l")(scaled)
    model = mlstm.Model(x, out)
    data = np.ones((2, 4, 2), "float32")
    data[0, 2:] = 0.0
    tape = model.forward([data])
    assert tape.output_masks[0].tolist() == [[True, True, False, False], [True] * 4]


def test_an_unregistered_layer_cannot_be_rebuilt_and_the_error_says_why():
    class Unregistered(Scale):
        pass

    x = mlstm.Input(shape=(3,), name="x")
    model = mlstm.Model(x, Unregistered(name="u")(x))
    with pytest.raises(ValueError, match="Unknown layer 'Unregistered'.*register_layer"):
        model.clone(dtype="float64")


def test_registering_another_class_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        @mlstm.register_layer
        class Dense(mlstm.Layer):      # noqa: F811 - the clash is the point
            pass
