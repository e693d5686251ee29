"""B. Planche and E. Andres, "Hands-On Computer Vision with TensorFlow 2" (Packt, 2019),
the chapter "Video and Recurrent Neural Networks", the action-recognition model: per-frame
CNN features, zero-padded to a common number of frames, classified by an LSTM.

Masking(0) skips the padded frames; an LSTM of 512 units with dropout=0.5 and
recurrent_dropout=0.5 reads the features; a ReLU Dense of 512, Dropout(0.5) and a softmax
over the action classes follow. Categorical cross-entropy on one-hot actions, accuracy. The
optimizer here is Adam (the chapter's compile call is not in the copy available to me).
Shrunk: 7 frames of 6 features (some videos shorter, zero-padded at the end), 5 units, a
Dense of 4, 3 actions, batch of 8.

Every dropout rate is set to 0 for crosscheck's training comparisons (Keras' random masks
cannot be reproduced); inference is compared as is.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for, sequences

pytestmark = pytest.mark.keras

FRAMES, FEATURES, ACTIONS, N = 7, 6, 3, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((FRAMES, FEATURES), name="frame_features"),
            layers.Masking(mask_value=0.0, name="padding"),
            layers.LSTM(5, dropout=0.5, recurrent_dropout=0.5, name="lstm"),
            layers.Dense(4, activation="relu", name="hidden"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(ACTIONS, activation="softmax", name="action")],
            name="video_classification")
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_video_classification(dtype):
    rng = rng_for("video classification")
    x = sequences(rng, N, FRAMES, FEATURES, dtype)
    for video, frames in enumerate(rng.integers(3, FRAMES + 1, size=N)):
        x[video, frames:] = 0.0                                  # shorter videos, padded
    model, report, _ = check_real_model(build(dtype), x, one_hot(rng, (N,), ACTIONS, dtype),
                                        dtype)
    assert sorted(report["dropout_rates_zeroed"]) == sorted(
        ["dropout: rate=0.5", "lstm: dropout=0.5", "lstm: recurrent_dropout=0.5"])
