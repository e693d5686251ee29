"""Metrics carried through from_keras / to_keras / load_keras (issue 12: they were dropped).

Keras' compile metrics map, per output, to mlstm's registered metrics (mlstm.registry.METRICS)
under Keras' own History keys; the values mlstm then reports agree with Keras'. What mlstm
has not registered, renamed metrics, options off their defaults and weighted_metrics are
refused by name.
"""
import numpy as np
import pytest

from _harness import keras_building, one_hot, rng_for, sequences

pytestmark = pytest.mark.keras

N = 6


def two_head_model(keras, metrics=None, weighted_metrics=None):
    series = keras.Input((4, 3), name="series")
    state = keras.layers.LSTM(4, name="lstm")(series)
    level = keras.layers.Dense(1, name="level")(state)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(state)
    model = keras.Model(series, [level, kind], name="two_heads")
    model.compile("adam", loss=["mse", "categorical_crossentropy"], metrics=metrics,
                  weighted_metrics=weighted_metrics)
    return model


def data(dtype="float64"):
    rng = rng_for("metrics")
    return (sequences(rng, N, 4, 3, dtype),
            [rng.standard_normal((N, 1)).astype(dtype), one_hot(rng, (N,), 3, dtype)])


def same_logs(ours, theirs, dtype="float64"):
    assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
    rel = {"float64": 1e-9, "float32": 1e-5}[dtype]
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=rel, abs=rel * 1e-3), key


@pytest.mark.parametrize("metrics, dtype", [
    # one entry per output: names, Keras metric objects and functions mixed (float32:
    # Keras' TopKCategoricalAccuracy fails in float64, TensorFlow's in_top_k takes float32)
    (lambda k: [["mae", k.metrics.MeanSquaredError()],
                ["accuracy", k.metrics.TopKCategoricalAccuracy()]], "float32"),
    (lambda k: [k.metrics.mean_absolute_error, "categorical_accuracy"], "float64"),
    # a dict by output name, one output left without metrics
    (lambda k: {"kind": ["acc", k.metrics.CategoricalAccuracy()]}, "float64"),
])
def test_from_keras_carries_the_metrics_under_keras_keys(metrics, dtype):
    from mlstm.interop.keras import from_keras, to_keras

    x, y = data(dtype)
    with keras_building(dtype) as keras:
        kmodel = two_head_model(keras, metrics(keras))
        model = from_keras(kmodel)
        theirs = kmodel.train_on_batch(x, y, return_dict=True)
    ours = model.train_on_batch(x, y, return_dict=True)
    same_logs(ours, theirs, dtype)
    assert len(model.metrics_names) > 3              # metrics beyond the three losses
    # and back: to_keras compiles the Keras twin with the same metrics
    back = to_keras(model)
    with keras_building(dtype):
        again = back.train_on_batch(x, y, return_dict=True)
    assert set(again) == set(ours)
    assert model.metrics_names == from_keras(back).metrics_names


def test_one_output_takes_every_metric_and_load_keras_keeps_them(tmp_path):
    from mlstm.interop.keras import load_keras

    rng = rng_for("one output")
    x, y = sequences(rng, N, 4, 3, "float64"), rng.standard_normal((N, 1))
    with keras_building("float64") as keras:
        series = keras.Input((4, 3), name="series")
        kmodel = keras.Model(series, keras.layers.Dense(1, name="level")(
            keras.layers.LSTM(4, name="lstm")(series)), name="one_head")
        kmodel.compile("sgd", loss="mse", metrics=["mae", keras.metrics.MeanSquaredError()])
        path = tmp_path / "one_head.keras"
        kmodel.save(path)
        model = load_keras(path)
        theirs = kmodel.train_on_batch(x, y, return_dict=True)
    assert model.metrics_names == ["loss", "mae", "mean_squared_error"]
    same_logs(model.train_on_batch(x, y, return_dict=True), theirs)


def test_no_metrics_stays_no_metrics():
    from mlstm.interop.keras import from_keras, to_keras

    with keras_building("float64") as keras:
        model = from_keras(two_head_model(keras))
    assert model.metrics_names == ["loss", "level_loss", "kind_loss"]
    assert to_keras(model)._compile_config.config["metrics"] is None


@pytest.mark.parametrize("metrics, weighted, message", [
    (lambda k: [[], ["AUC"]], None, r"output 'kind': metric 'AUC' has no mlstm counterpart"),
    (lambda k: [[k.metrics.MeanAbsoluteError(name="err")], []], None,
     r"metric 'err \(MeanAbsoluteError\)' is keyed 'err' by Keras, a name mlstm does not "
     r"register"),
    (lambda k: [[], [k.metrics.TopKCategoricalAccuracy(k=2)]], None,
     r"with k=2 is not supported \(mlstm computes k=5 only\)"),
    (lambda k: [[], [k.metrics.F1Score()]], None, r"metric 'f1_score \(F1Score\)' has no mlstm"),
    (lambda k: ["mae"], None, r"for 2 outputs Keras 3.15 takes one entry per output"),
    (lambda k: None, lambda k: [["mae"], []], r"weighted_metrics=.* are not supported"),
])
def test_metrics_mlstm_cannot_carry_are_refused_by_name(metrics, weighted, message):
    from mlstm.interop.keras import from_keras

    with keras_building("float64") as keras:
        kmodel = two_head_model(keras, metrics(keras), weighted and weighted(keras))
        with pytest.raises(ValueError, match=message):
            from_keras(kmodel)
        assert from_keras(kmodel, compile=False).compiled is False


def test_to_keras_refuses_a_metric_keras_does_not_have():
    import mlstm
    from mlstm.interop.keras import to_keras
    from mlstm.registry import METRICS

    @mlstm.metrics.register_metric
    def mean_fourth_power_error(y_true, y_pred):
        return np.mean((y_pred - y_true) ** 4, axis=-1)

    try:
        inputs = mlstm.Input((4, 3), name="series")
        model = mlstm.Model(inputs, mlstm.Dense(1, name="level")(mlstm.LSTM(4)(inputs)))
        model.compile("sgd", loss="mse", metrics=["mean_fourth_power_error"])
        with pytest.raises(ValueError, match="metric 'mean_fourth_power_error' is not a "
                                             "Keras metric name; call to_keras"):
            to_keras(model)
        assert to_keras(model, compile=False).compiled is False
    finally:     # leave the registry as the other tests expect it
        METRICS._classes.pop(mean_fourth_power_error.registered_name)
