"""Learning-rate schedules (issue 14): Keras' six, in float32, at the step before the update.

Against Keras 3.15: each schedule's value at steps 0..499 (float32, equal or one float32
ulp apart: TensorFlow calls the C library's float pow/cos/log, which is not always
correctly rounded; mlstm rounds the float64 value), and a training run with each schedule
in float64 (history and weights within 1e-9, and the rate of every step as Keras' optimizer
reports it). Then: configs in JSON, saving and resuming, the trace.
"""
import json

import numpy as np
import pytest
from _keras_twin import (assert_same_history, assert_same_weights, data, float64, keras_fit,
                         keras_twin, single_output_model)

import mlstm
from mlstm import schedules
from mlstm.optimizers import SGD, Adam

CASES = {
    "exponential": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7,
                                             decay_rate=0.83)),
    "exponential-staircase": ("ExponentialDecay", dict(initial_learning_rate=0.1,
                                                       decay_steps=3, decay_rate=0.5,
                                                       staircase=True)),
    "piecewise": ("PiecewiseConstantDecay", dict(boundaries=[2, 5, 6],
                                                 values=[0.1, 0.05, 0.011, 0.003])),
    "inverse-time": ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=7,
                                              decay_rate=0.5)),
    "inverse-time-staircase": ("InverseTimeDecay", dict(initial_learning_rate=0.1,
                                                        decay_steps=2, decay_rate=0.5,
                                                        staircase=True)),
    "polynomial": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=6,
                                           end_learning_rate=0.001, power=1.7)),
    "polynomial-cycle": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4,
                                                 end_learning_rate=0.001, power=0.5,
                                                 cycle=True)),
    "cosine": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=8, alpha=0.1)),
    "cosine-warmup": ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=6,
                                          alpha=0.1, warmup_target=0.1, warmup_steps=3)),
    "cosine-restarts": ("CosineDecayRestarts", dict(initial_learning_rate=0.1,
                                                    first_decay_steps=3, t_mul=2.0,
                                                    m_mul=0.9, alpha=0.05)),
    "cosine-restarts-t1": ("CosineDecayRestarts", dict(initial_learning_rate=0.1,
                                                       first_decay_steps=3, t_mul=1.0,
                                                       m_mul=0.9, alpha=0.05)),
}


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    return _import_keras()


def _both(keras, case):
    name, options = CASES[case]
    return (getattr(schedules, name)(**options),
            getattr(keras.optimizers.schedules, name)(**options))


def _ulps(a, b):
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.keras
@pytest.mark.parametrize("case", sorted(CASES))
def test_values_are_keras_float32_values(keras, case):
    import tensorflow as tf
    mine, theirs = _both(keras, case)
    # scaled so that 500 steps cover several decays, restarts and boundaries
    options = dict(CASES[case][1])
    for key in ("decay_steps", "first_decay_steps", "warmup_steps"):
        if key in options:
            options[key] *= 40
    if "boundaries" in options:
        options["boundaries"] = [b * 40 for b in options["boundaries"]]
    mine = type(mine)(**options)
    theirs = type(theirs)(**options)
    with float64(keras):         # even under a float64 policy, Keras computes in float32
        expected = np.array([theirs(tf.constant(t, tf.int64)).numpy() for t in range(500)])
    got = np.array([mine(t) for t in range(500)])
    assert expected.dtype == got.dtype == np.float32
    ulps = _ulps(got, expected)
    assert ulps.max() <= 1, case
    assert np.count_nonzero(ulps) <= 5, case           # measured: 0 to 3 of 500


@pytest.mark.keras
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_with_a_schedule_matches_keras(keras, case):
    x, y1, _ = data(n=12)
    mine_lr, _ = _both(keras, case)
    name, options = CASES[case]
    optimizer = Adam if "restarts" in case or "warmup" in case else SGD
    model = single_output_model()
    model.compile(optimizer(mine_lr), loss="mse")

    def keras_optimizer():
        lr = getattr(keras.optimizers.schedules, name)(**options)
        return (keras.optimizers.Adam(lr) if optimizer is Adam
                else keras.optimizers.SGD(lr))

    kmodel = keras_twin(keras, model, keras_optimizer, "mse")
    rates = []

    class Rates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(float(self.model.optimizer.learning_rate))

    theirs = keras_fit(keras, kmodel, x, y1[:, :1], batch_size=5, epochs=3,
                       callbacks=[Rates()])
    mine = model.fit(x, y1[:, :1], batch_size=5, epochs=3, shuffle=False, verbose=0,
                     trace=True)
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)
    steps = np.arange(9)
    assert list(mine.trace.iteration) == list(steps + 1)
    # the rate of every step: the schedule at the count before the update, as in Keras
    assert list(mine.trace.learning_rate) == [float(mine_lr(int(t))) for t in steps]
    np.testing.assert_allclose(mine.trace.learning_rate, rates, rtol=2.4e-7, atol=0)


def test_configs_are_json_and_rebuild_the_schedule():
    for name, options in CASES.values():
        schedule = getattr(schedules, name)(**options)
        spec = json.loads(json.dumps(schedules.serialize(schedule)))
        again = schedules.deserialize(spec)
        assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
        assert [again(t) for t in range(30)] == [schedule(t) for t in range(30)]
    adam = Adam(schedules.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=2))
    config = json.loads(json.dumps(adam.get_config()))
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    rebuilt = Adam.from_config(config)
    assert [rebuilt.learning_rate_at(t) for t in range(15)] == \
        [adam.learning_rate_at(t) for t in range(15)]
    assert mlstm.optimizers.schedules is schedules


def test_a_saved_model_resumes_with_its_schedule(tmp_path):
    x, y1, _ = data(n=12)
    lr = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.7, staircase=True)
    straight = single_output_model()
    straight.compile(SGD(lr, momentum=0.5), loss="mse")
    straight.fit(x, y1[:, :1], batch_size=4, epochs=4, seed=2, verbose=0)
    interrupted = single_output_model()
    interrupted.compile(SGD(lr, momentum=0.5), loss="mse")
    interrupted.fit(x, y1[:, :1], batch_size=4, epochs=2, seed=2, verbose=0,
                    checkpoint=tmp_path / "ckpt.npz")
    resumed = mlstm.load_model(tmp_path / "ckpt.npz")
    assert isinstance(resumed.optimizer.learning_rate, schedules.ExponentialDecay)
    resumed.fit(x, y1[:, :1], verbose=0, **dict(resumed.training_state, epochs=4))
    assert resumed.optimizer.iterations == 12
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_refusals():
    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="one less than"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        schedules.PiecewiseConstantDecay([3, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="non-negative int"):
        schedules.CosineDecay(0.1, 10)(-1)
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        SGD(lambda step: 0.1)
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})


@pytest.mark.keras
def test_a_keras_optimizer_with_a_keras_schedule_maps_to_the_same_rates():
    import keras

    from mlstm.optimizers import get
    for schedule in (keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5, staircase=True),
                     keras.optimizers.schedules.CosineDecay(0.01, 100, warmup_target=0.02,
                                                            warmup_steps=5)):
        ours = get(keras.optimizers.RMSprop(learning_rate=schedule))
        assert type(ours).__name__ == "RMSprop"
        for step in (0, 4, 7, 23, 99):
            assert ours.learning_rate_at(step) == float(schedule(step))


@pytest.mark.keras
@pytest.mark.parametrize("schedule", [
    mlstm.schedules.ExponentialDecay(0.01, 10, 0.5, staircase=True),
    mlstm.schedules.CosineDecay(0.01, 100, warmup_target=0.02, warmup_steps=5),
    mlstm.schedules.PiecewiseConstantDecay([5, 10], [0.1, 0.01, 0.001]),
    mlstm.schedules.CosineDecayRestarts(0.1, 10)], ids=lambda s: type(s).__name__)
def test_to_keras_carries_the_schedule_and_the_keras_file_saves(schedule, tmp_path):
    from mlstm.demo import build_demo_model
    from mlstm.interop.keras import to_keras

    model = build_demo_model()
    model.compile(optimizer=mlstm.optimizers.RMSprop(schedule),
                  loss=["mse", "binary_crossentropy"])
    theirs = to_keras(model).optimizer._learning_rate
    for step in (0, 3, 7, 12, 40):
        assert float(theirs(step)) == model.optimizer.learning_rate_at(step)
    model.save(tmp_path / "scheduled.keras")            # refused before: no translation
    assert (tmp_path / "scheduled.keras").stat().st_size > 0
