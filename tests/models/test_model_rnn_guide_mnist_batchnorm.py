"""Keras guide "Working with RNNs", its MNIST model (https://keras.io/guides/working_with_rnns/,
section "Using CuDNN kernels when available").

Each image row is a time step: rows of 28 pixels (length None) go through an LSTM of 64
units, then BatchNormalization and a Dense of 10 logits. Sparse categorical cross-entropy
from logits, SGD ("sgd"), accuracy. Shrunk: 6 rows of 7 pixels, 5 units, batch of 8.

BatchNormalization imports since issue 13 (docs/wrappers_and_regularization.md).
"""
import numpy as np
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for

pytestmark = pytest.mark.keras

ROWS, PIXELS, N = 6, 7, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((None, PIXELS), name="rows"),
                                  keras.layers.LSTM(5, name="lstm"),
                                  keras.layers.BatchNormalization(name="batch_norm"),
                                  keras.layers.Dense(10, name="logits")], name="mnist_rows")
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      optimizer="sgd", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_guide_mnist_batchnorm(dtype):
    rng = rng_for("mnist rows")
    x = rng.random((N, ROWS, PIXELS)).astype(dtype)          # pixels / 255
    check_real_model(build(dtype), x, rng.integers(0, 10, size=(N,)).astype(np.int64), dtype)
