"""Keras 2 documentation, "Getting started with the Keras functional API", section "Shared
layers" (keras.io 2.x): are two tweets from the same person? Two inputs, one shared LSTM.

Each tweet, as a sequence of one-hot characters (280 steps of 256), goes through the same
LSTM of 64 units; the two final states are concatenated and one sigmoid unit decides.
RMSprop ("rmsprop"), binary cross-entropy, accuracy. Shrunk: 6 steps of 10, 5 units,
batch of 8.
"""
import pytest

from _harness import DTYPES, binary, check_real_model, keras_building, one_hot, rng_for

pytestmark = pytest.mark.keras

STEPS_IN, CHARS, N = 6, 10, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        tweet_a = keras.Input((STEPS_IN, CHARS), name="tweet_a")
        tweet_b = keras.Input((STEPS_IN, CHARS), name="tweet_b")
        shared_lstm = layers.LSTM(5, name="shared_lstm")
        merged = layers.concatenate([shared_lstm(tweet_a), shared_lstm(tweet_b)], axis=-1)
        same_author = layers.Dense(1, activation="sigmoid", name="same_author")(merged)
        model = keras.Model([tweet_a, tweet_b], same_author, name="tweet_pairs")
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_shared_lstm_tweets(dtype):
    rng = rng_for("tweets")
    x = [one_hot(rng, (N, STEPS_IN), CHARS, dtype), one_hot(rng, (N, STEPS_IN), CHARS, dtype)]
    check_real_model(build(dtype), x, binary(rng, (N, 1), dtype), dtype)
