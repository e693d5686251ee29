"""keras.io example "Character-level text generation with LSTM"
(https://keras.io/examples/generative/lstm_character_level_text_generation/).

Windows of one-hot characters go through an LSTM of 128 units; a softmax Dense over the
character set predicts the next character. RMSprop with learning rate 0.01, categorical
cross-entropy. Shrunk: windows of 6 characters instead of 40, 12 characters, 8 units,
batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for

pytestmark = pytest.mark.keras

MAXLEN, CHARS, N = 6, 12, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((MAXLEN, CHARS), name="window"),
                                  keras.layers.LSTM(8, name="lstm"),
                                  keras.layers.Dense(CHARS, activation="softmax",
                                                     name="next_char")],
                                 name="char_text_generation")
        model.compile(loss="categorical_crossentropy",
                      optimizer=keras.optimizers.RMSprop(learning_rate=0.01))
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_char_text_generation(dtype):
    rng = rng_for("char text")
    x = one_hot(rng, (N, MAXLEN), CHARS, dtype)
    y = one_hot(rng, (N,), CHARS, dtype)
    check_real_model(build(dtype), x, y, dtype)
