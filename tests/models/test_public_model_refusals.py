"""Public Keras LSTM models mlstm does not import, and nobody is adding what they need: each
is refused by a ValueError naming the layer and the option (docs/real_models.md lists them
with these messages). Built as published, sizes shrunk. Models that were refused here and
now import are checked to import.
"""
import numpy as np
import pytest

from _harness import keras_building

pytestmark = pytest.mark.keras


def imdb_lstm_sentiment(keras):
    """keras.io example "Sentiment analysis with LSTM on the IMDB dataset"
    (https://keras.io/examples/nlp/imdb_lstm_sentiment/): LSTM(128, dropout=0.2)."""
    layers = keras.layers
    model = keras.Sequential([keras.Input((20,), dtype="int32"), layers.Embedding(50, 8),
                              layers.LSTM(8, dropout=0.2, name="lstm"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def keras2_imdb_lstm(keras):
    """Keras 2 examples/imdb_lstm.py (github.com/keras-team/keras, Keras 2.x):
    LSTM(128, dropout=0.2, recurrent_dropout=0.2)."""
    layers = keras.layers
    model = keras.Sequential([keras.Input((10,), dtype="int32"), layers.Embedding(50, 8),
                              layers.LSTM(8, recurrent_dropout=0.2, name="lstm"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def stateful_stacked(keras):
    """Machine Learning Mastery, airline passengers, "Stacked LSTMs with Memory Between
    Batches" (and the Keras 2 Sequential guide's stateful stacked LSTM)."""
    layers = keras.layers
    model = keras.Sequential([keras.Input((3, 1), batch_size=1),
                              layers.LSTM(4, stateful=True, return_sequences=True),
                              layers.LSTM(4, stateful=True), layers.Dense(1)])
    model.compile(loss="mean_squared_error", optimizer="adam")
    return model


def rnn_of_lstm_cell(keras):
    """Keras guide "Working with RNNs", the MNIST model built as RNN(LSTMCell(64))."""
    layers = keras.layers
    return keras.Sequential([keras.Input((None, 7)), layers.RNN(layers.LSTMCell(5)),
                             layers.Dense(10)])


def feedback_subclassed(keras):
    """TensorFlow tutorial "Time series forecasting", the autoregressive ``FeedBack`` model
    (a keras.Model subclass around an LSTMCell)."""
    layers = keras.layers

    class FeedBack(keras.Model):
        def __init__(self):
            super().__init__()
            self.cell = layers.LSTMCell(4)
            self.rnn = layers.RNN(self.cell, return_state=True)
            self.dense = layers.Dense(3)

        def call(self, inputs):
            x, *_ = self.rnn(inputs)
            return self.dense(x)

    model = FeedBack()
    model(np.zeros((1, 5, 3), "float32"))
    model.compile(loss="mse", optimizer="adam")
    return model


def ids_as_float_inputs(keras):
    """Keras guide "The Functional API", the ticket model as published: its title Input has
    no dtype (float32) and Keras casts the ids inside Embedding (imported since issue 12
    (b))."""
    layers = keras.layers
    title = keras.Input((None,), name="title")
    return keras.Model(title, layers.Dense(1)(layers.LSTM(3)(layers.Embedding(20, 4)(title))))


def shared_embedding_two_lengths(keras):
    """programmerteach.com "Keras Model multiple inputs - Multi-output design ideas": one
    Embedding called on a 30-id title and a 200-id description (imported since issue 12
    (b))."""
    layers = keras.layers
    title = keras.Input((30,), dtype="int32", name="title")
    desc = keras.Input((200,), dtype="int32", name="desc")
    embedding = layers.Embedding(300, 8, name="embedding")
    return keras.Model([title, desc], [layers.Dense(1)(layers.LSTM(3)(embedding(title))),
                                       layers.Dense(1)(layers.LSTM(3)(embedding(desc)))])


def text_vectorization(keras):
    """TensorFlow tutorial "Text classification with an RNN": strings in, TextVectorization
    first."""
    layers = keras.layers
    encoder = layers.TextVectorization(max_tokens=50)
    encoder.adapt(np.array(["a good film", "a bad film"]))
    return keras.Sequential([keras.Input((), dtype="string"), encoder,
                             layers.Embedding(50, 8, mask_zero=True), layers.LSTM(4),
                             layers.Dense(1)])


@pytest.mark.parametrize("build, rates", [(imdb_lstm_sentiment, (0.2, 0.0)),
                                         (keras2_imdb_lstm, (0.0, 0.2))],
                         ids=["lstm_dropout", "recurrent_dropout"])
def test_lstm_dropout_models_import_with_their_rates(build, rates):
    """Refused until LSTM(dropout=, recurrent_dropout=) existed (issue 13); now imported."""
    from mlstm.interop.keras import from_keras

    with keras_building("float32") as keras:
        lstm = from_keras(build(keras)).get_layer("lstm")
    assert (lstm.dropout, lstm.recurrent_dropout) == rates


@pytest.mark.parametrize("build", [ids_as_float_inputs, shared_embedding_two_lengths],
                         ids=["float_ids", "shared_two_lengths"])
def test_float_ids_and_one_embedding_on_two_lengths_import(build):
    """Refused until issue 12 (b): a float32 Input of ids into Embedding (Keras casts them),
    and one Embedding called on ids of two fixed lengths. Now imported, and the same
    numbers as Keras (tests/models/test_model_*.py cross-check such models)."""
    from mlstm.interop.keras import from_keras

    with keras_building("float32") as keras:
        kmodel = build(keras)
        model = from_keras(kmodel)
        rng = np.random.default_rng(0)
        xs = [rng.integers(0, 20, (3,) + tuple(8 if d is None else d for d in t.shape[1:]))
              .astype(t.dtype) for t in kmodel.inputs]
        xs = xs[0] if len(xs) == 1 else xs
        expected = kmodel.predict(xs, verbose=0)
    expected = expected if isinstance(expected, list) else [expected]
    got = model.predict(xs)
    got = got if isinstance(got, list) else [got]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build, message", [
    (stateful_stacked, r"LSTM '\w+': option stateful=True is not supported by mlstm: only "
                       r"False is"),
    (rnn_of_lstm_cell, r"Layer 'rnn' \(RNN\) is layer class RNN, which mlstm does not support. "
                       r"Supported Keras layers: .*LSTM"),
    (feedback_subclassed, r"is a subclassed model; only functional and Sequential models"),
    (text_vectorization, r"\(TextVectorization\) is layer class TextVectorization, which mlstm "
                         r"does not support"),
], ids=["stateful", "rnn_cell", "subclassed", "text_vectorization"])
def test_refused_naming_the_layer_and_option(build, message):
    from mlstm.interop.keras import from_keras

    with keras_building("float32") as keras:
        model = build(keras)
        with pytest.raises(ValueError, match=message):
            from_keras(model)
