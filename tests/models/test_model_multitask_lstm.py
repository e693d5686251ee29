"""Q&A "Building a mutlivariate, multi-task LSTM with Keras" (codemia.io knowledge hub,
https://codemia.io/knowledge-hub/path/building_a_mutlivariate_multi-task_lstm_with_keras_1).
One input, two outputs.

Sequences of 12 steps of 4 features go through a shared LSTM of 32 units and a ReLU Dense
of 16; a linear unit regresses a value ("regression_output", mean squared error) and a
softmax over 3 classes classifies (one-hot targets, "classification_output", categorical
cross-entropy). Adam. The answer's compile call is not in the copy available to me; the
losses are those its text names for each head, the optimizer Adam. Shrunk: 6 steps,
batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, FEATURES, CLASSES, N = 6, 4, 3, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        sequence = keras.Input((STEPS_IN, FEATURES), name="sequence")
        shared = layers.LSTM(32, return_sequences=False, name="lstm")(sequence)
        shared = layers.Dense(16, activation="relu", name="shared_dense")(shared)
        regression = layers.Dense(1, name="regression_output")(shared)
        classification = layers.Dense(CLASSES, activation="softmax",
                                      name="classification_output")(shared)
        model = keras.Model(sequence, [regression, classification], name="multitask_lstm")
        model.compile(optimizer="adam",
                      loss={"regression_output": "mse",
                            "classification_output": "categorical_crossentropy"},
                      metrics={"regression_output": ["mae"],
                               "classification_output": ["accuracy"]})
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_multitask_lstm(dtype):
    rng = rng_for("multitask")
    x = rng.random((N, STEPS_IN, FEATURES)).astype(dtype)
    y = {"regression_output": rng.random((N, 1)).astype(dtype),
         "classification_output": one_hot(rng, (N,), CLASSES, dtype)}
    model, report, _ = check_real_model(build(dtype), x, y, dtype)
    assert set(report["gradients"]) == {"total", "regression_output", "classification_output"}
    assert model.metrics_names[-2:] == ["regression_output_mae",
                                        "classification_output_accuracy"]
