"""Helpers for the Keras parity tests of the classification parts (softmax heads, the new
losses, Embedding, metrics). Imported only by tests marked ``keras``.

Keras in float64 needs the dtype policy as well as floatx: a layer takes the policy, a
loss object its dtype from floatx when it is built (a float32 loss on a float64 output
casts the output and so loses the logits the softmax cached on it).
"""
import contextlib
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def keras_dtype(dtype):
    """Keras with ``floatx`` and the global dtype policy set to ``dtype``, restored after."""
    import keras
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield keras
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


def keras_step(keras_model, xs, ys):
    """What one Keras training step computes, eagerly: the prediction(s), the compiled
    loss (``compute_loss``: per-output losses weighted and summed) and its gradient for
    every trainable weight (``tf.GradientTape``), as NumPy arrays."""
    import tensorflow as tf
    with tf.GradientTape() as tape:
        y_pred = keras_model(xs, training=True)
        loss = keras_model.compute_loss(x=xs, y=ys, y_pred=y_pred)
    grads = tape.gradient(loss, keras_model.trainable_weights)
    preds = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
    # an Embedding's gradient comes as IndexedSlices: made dense
    return ([np.asarray(p) for p in preds], float(loss),
            [np.asarray(tf.convert_to_tensor(g)) for g in grads])


def assert_model_matches_keras(model, keras_model, xs, ys, tol):
    """Forward values, total loss and the gradient of every weight of the mlstm ``model``
    agree with ``keras_model`` (same weights, same layer order) within ``tol``."""
    preds, loss, grads = keras_step(keras_model, xs if len(xs) > 1 else xs[0],
                                    ys if len(ys) > 1 else ys[0])
    tape = model.forward(model._inputs(xs))
    for ours, theirs in zip(tape.outputs, preds):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)
    ys_checked = model._targets(ys, len(xs[0]))
    result = model.loss_and_output_grads(model.forward(model._inputs(xs), training=True),
                                         ys_checked)
    assert abs(result.total - loss) <= tol * (1 + abs(loss)), (result.total, loss)
    ours = model.gradients(xs, ys)
    names = [name for name in model.params if model.get_layer(name.split("/")[0]).trainable]
    assert len(names) == len(grads)
    for name, theirs in zip(names, grads):
        np.testing.assert_allclose(ours[name], theirs, rtol=tol, atol=tol, err_msg=name)
    return result.total, loss
