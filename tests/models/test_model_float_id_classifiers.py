"""Two text classifiers that give Embedding its word ids through a float32 Input, as
published (Keras casts the ids to int inside Embedding):

- Keras 2 documentation, "Getting started with the Sequential model", the LSTM sequence
  classifier: Embedding(max_features, 256), LSTM(128), Dropout(0.5), one sigmoid unit; binary
  cross-entropy, RMSprop ("rmsprop"), accuracy. The Sequential model has no Input layer;
  Keras 3 builds it from a float32 input.
- Q&A "Keras LSTM multiclass classification structure" (errorhandle.ai): Embedding,
  LSTM(128, return_sequences=True), Dropout, LSTM(64), a ReLU Dense and a softmax over the
  classes; categorical cross-entropy, Adam, accuracy.

Shrunk: 30 words, 6 dimensions, texts of 8 ids, 4 / 3 units, a Dense of 4, 3 classes,
batch of 8. Ids are whole numbers in a float32 array, as ``pad_sequences(...).astype(float)``
or a NumPy pipeline leaves them.

Pending (conftest.py): token ids through a float32 Input (mlstm refuses them today), then
Keras' RMSprop and Adam on an Embedding's sparse gradient (``_harness.SPARSE_RMSPROP``,
``_harness.SPARSE_ADAM``).
"""
import pytest

from _harness import (DTYPES, SPARSE_ADAM, SPARSE_RMSPROP, binary, check_real_model,
                      keras_building, one_hot, rng_for, token_ids)

pytestmark = pytest.mark.keras

WORDS, LENGTH, CLASSES, N = 30, 8, 3, 8
FLOAT_IDS = "token ids through a float32 Input into Embedding (Keras casts them)"


def keras2_sequential_guide(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            layers.Embedding(WORDS, 6, name="embedding"),
            layers.LSTM(4, name="lstm"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(1, activation="sigmoid", name="label")], name="sequential_guide")
        model.build((None, LENGTH))
        model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    return model


def multiclass_qa(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((LENGTH,), name="text"),
            layers.Embedding(WORDS, 6, name="embedding"),
            layers.LSTM(4, return_sequences=True, name="lstm_1"),
            layers.Dropout(0.2, name="dropout"),
            layers.LSTM(3, name="lstm_2"),
            layers.Dense(4, activation="relu", name="hidden"),
            layers.Dense(CLASSES, activation="softmax", name="label")], name="multiclass")
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.mark.pending(reason=FLOAT_IDS + "; then " + SPARSE_RMSPROP)
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras2_sequential_guide_classifier(dtype):
    rng = rng_for("keras2 sequential guide")
    x = token_ids(rng, N, LENGTH, WORDS).astype("float32")
    model, _, _ = check_real_model(keras2_sequential_guide(dtype), x,
                                   binary(rng, (N, 1), dtype), dtype)
    assert model.get_layer("dropout").rate == 0.5


@pytest.mark.pending(reason=FLOAT_IDS + "; then " + SPARSE_ADAM)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multiclass_classifier(dtype):
    rng = rng_for("multiclass qa")
    x = token_ids(rng, N, LENGTH, WORDS).astype("float32")
    model, _, _ = check_real_model(multiclass_qa(dtype), x,
                                   one_hot(rng, (N,), CLASSES, dtype), dtype)
    assert model.get_layer("dropout").rate == 0.2
