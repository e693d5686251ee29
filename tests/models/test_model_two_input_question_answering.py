"""F. Chollet, "Deep Learning with Python" (1st ed., Manning 2017), section 7.1.1, the
two-input question-answering model. Two inputs.

A reference text and a question, each as word ids (int32 Inputs of any length), each through
its own Embedding (64 and 32 dimensions) and LSTM (32 and 16 units); the two encodings are
concatenated and a softmax over the answer vocabulary reads them. Categorical cross-entropy
on one-hot answers, RMSprop ("rmsprop"), accuracy. Shrunk: vocabularies of 30, 20 and 5
words, texts of 9 ids and questions of 4, 6 and 4 units, batch of 8.

Word ids repeat in a batch, so Keras' RMSprop updates the Embeddings per token occurrence
(docs/optimizers.md, "Embedding tables"); mlstm does the same.
"""
import pytest

from _harness import (DTYPES, check_real_model, keras_building, one_hot,
                      rng_for, token_ids)

pytestmark = pytest.mark.keras

TEXT_WORDS, QUESTION_WORDS, ANSWERS, N = 30, 20, 5, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        text = keras.Input((None,), dtype="int32", name="text")
        question = keras.Input((None,), dtype="int32", name="question")
        encoded_text = layers.LSTM(6, name="text_lstm")(
            layers.Embedding(TEXT_WORDS, 6, name="text_embedding")(text))
        encoded_question = layers.LSTM(4, name="question_lstm")(
            layers.Embedding(QUESTION_WORDS, 4, name="question_embedding")(question))
        both = layers.concatenate([encoded_text, encoded_question], axis=-1)
        answer = layers.Dense(ANSWERS, activation="softmax", name="answer")(both)
        model = keras.Model([text, question], answer, name="question_answering")
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_input_question_answering(dtype):
    rng = rng_for("question answering")
    x = [token_ids(rng, N, 9, TEXT_WORDS), token_ids(rng, N, 4, QUESTION_WORDS)]
    model, report, _ = check_real_model(build(dtype), x, one_hot(rng, (N,), ANSWERS, dtype),
                                        dtype)
    assert model.input_names == ["text", "question"]
    assert {"text_embedding/embeddings", "question_embedding/embeddings"} <= set(
        report["gradients"]["total"])
