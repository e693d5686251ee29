"""keras.io example "Sequence to sequence learning for performing number addition"
(https://keras.io/examples/nlp/addition_rnn/).

A question such as "535+61" as one-hot characters (digits, "+" and space) goes through an
LSTM of 128 units; RepeatVector repeats its last state once per answer character; a second
LSTM of 128 units returns every step, and a softmax Dense over the characters reads each.
Categorical cross-entropy, Adam ("adam"), accuracy. Shrunk: questions of 7 characters
(3-digit numbers, as the example), answers of 4, 8 units, batch of 8.

RepeatVector imports since issue 13 (docs/wrappers_and_regularization.md).
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for

pytestmark = pytest.mark.keras

MAXLEN, ANSWER, CHARS, N = 7, 4, 12, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([
            keras.Input((MAXLEN, CHARS), name="question"),
            keras.layers.LSTM(8, name="encoder"),
            keras.layers.RepeatVector(ANSWER, name="repeat"),
            keras.layers.LSTM(8, return_sequences=True, name="decoder"),
            keras.layers.Dense(CHARS, activation="softmax", name="answer_char")],
            name="addition_rnn")
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_addition_rnn(dtype):
    rng = rng_for("addition")
    check_real_model(build(dtype), one_hot(rng, (N, MAXLEN), CHARS, dtype),
                     one_hot(rng, (N, ANSWER), CHARS, dtype), dtype)
