"""Gradient checks of models that draw random masks (dropout), with the masks held fixed.

Every forward pass gets a fresh generator made from the same seed, so each layer that
draws (``Layer.uses_rng``) gets the same child generator and the same masks each time:
the loss is then a deterministic function of the weights and inputs, and its finite
differences (five-point, :func:`mlstm.gradcheck.numerical_gradient`) must match the
backward pass through those masks.
"""
import numpy as np

from mlstm.gradcheck import numerical_gradient
from mlstm.testing import FINITE_DIFFERENCE_NOISE


def unresolvable(model, xs, ys, errors, seed=0, h=1e-4, rtol=1e-6):
    """The arrays of ``errors`` above ``rtol`` whose largest gradient entry is below what
    finite differences can resolve to ``rtol`` (the rounding noise of the loss, amplified
    by 1/h): such a draw cannot be judged, as ``mlstm.testing``'s noise-floor caveat says."""
    tape = model.forward(xs, training=True, rng=np.random.default_rng(seed))
    result = model.loss_and_output_grads(tape, ys)
    grads, d_inputs = model.backward(tape, result.d_outputs, result.d_logits, input_grads=True)
    scales = {name: float(np.max(np.abs(g), initial=0.0)) for name, g in grads.items()}
    scales.update({f"input:{k}": float(np.max(np.abs(g), initial=0.0))
                   for k, g in enumerate(d_inputs) if g is not None})
    floor = FINITE_DIFFERENCE_NOISE * max(1.0, abs(result.total)) / h / rtol
    return [name for name, error in errors.items() if error >= rtol and scales[name] < floor]


def fixed_mask_gradcheck(model, xs, ys, seed=0, h=1e-4, inputs=True):
    """``(errors, tape)``: ``{"layer/weight" | "input:k": max relative error}`` and the
    analytic pass's tape (to check that the masks dropped something). ``inputs=False``
    leaves the inputs out (behind a ``Masking`` layer a padded entry is a kink: moving it
    off the mask value unmasks its step)."""
    assert model.dtype == "float64", "finite differences need float64"

    def forward():
        return model.forward(xs, training=True, rng=np.random.default_rng(seed))

    tape = forward()
    result = model.loss_and_output_grads(tape, ys)
    grads, d_inputs = model.backward(tape, result.d_outputs, result.d_logits, input_grads=True)

    def loss():
        return model.loss_and_output_grads(forward(), ys).total

    errors = {}
    targets = [(name, p, grads[name]) for name, p in model.params.items()]
    if inputs:
        targets += [(f"input:{k}", x, g) for k, (x, g) in enumerate(zip(xs, d_inputs))]
    for name, array, analytic in targets:
        numeric = numerical_gradient(loss, array, h)
        scale = max(np.max(np.abs(analytic), initial=0.0), np.max(np.abs(numeric), initial=0.0))
        error = np.max(np.abs(analytic - numeric), initial=0.0)
        errors[name] = float(error / scale) if scale > 0 else float(error)
    return errors, tape
