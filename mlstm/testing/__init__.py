"""Property-based testing of LSTMs: mlstm's own, and anyone else's against mlstm.

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_, a *test-time*
dependency: install it with ``pip install "mlstm[test]"``. ``import mlstm`` never imports
this module (nor hypothesis); ``import mlstm.testing`` does.

Strategies (use them with ``@hypothesis.given``)
    :func:`lstm_configs`
        one LSTM layer: shapes (T, D, H, including 1) and options, a plain dict;
    :func:`model_configs`
        a multi-input / multi-output graph within size bounds, a plain dict;
    :func:`sequences`
        input arrays for a model or config, with optional padding masks (left, right,
        scattered, a fully masked row);
    :func:`targets`
        target arrays for a model's outputs, suited to each output's loss;
    :func:`cases`
        all of the above at once: a :class:`Case` (config, compiled model, x, y).

Builders
    :func:`build_model` (model config -> compiled Model), :func:`lstm_model` (LSTM config
    -> one-LSTM Model), :func:`randomize_weights`.

Assertions
    :func:`assert_gradients_close`
        the backward pass against finite differences in float64 (via
        :func:`mlstm.gradcheck`: random directions per array, then a drill-down by entries
        into what fails), failing with the parameter, gate block and time step;
    :func:`assert_matches`
        another implementation (forward, and optionally backward) against mlstm on drawn
        weights and inputs, failing with the output or parameter, the gate block (i/f/c/o),
        the time step, and the gate order that would make it match if it is a gate-order slip.

Fixtures
    :func:`wrong_backward_case`, :func:`use_wrong_backward`, :func:`lstm_backward_plain`:
    LSTM backward passes that are wrong on purpose (:data:`WRONG_BACKWARDS`: a swapped
    gate, a missing mask term, a sign error in one block), to show that a check catches
    them.

Modules: :mod:`~mlstm.testing.strategies`, :mod:`~mlstm.testing.builders`,
:mod:`~mlstm.testing.data`, :mod:`~mlstm.testing.caveats`,
:mod:`~mlstm.testing.gradients`, :mod:`~mlstm.testing.matches`,
:mod:`~mlstm.testing.faults`.

Configs are plain JSON-like dicts so that a failing example prints as something you can
read and paste back. A model config looks like::

    {"dtype": "float64", "timesteps": 3, "merge": True,
     "inputs": [{"name": "x0", "features": 2, "masking": True,
                 "lstms": [{"units": 2, "activation": "tanh",
                            "recurrent_activation": "sigmoid", "use_bias": True,
                            "return_sequences": False, "return_state": False,
                            "go_backwards": False, "initial_state": None}]}],
     "heads": [{"name": "out0", "source": 0, "units": 1, "activation": "sigmoid",
                "loss": "bce", "loss_weight": 0.3}]}

Each input gets an optional ``Masking(0.0)`` and a stack of LSTMs (all but the last with
``return_sequences=True``; ``initial_state`` is ``None``, ``"input"`` (h0/c0 are extra model
inputs ``<name>_h0``/``<name>_c0``) or ``"previous"`` (the states of the LSTM below, which
then has ``return_state=True``)). The *sources* heads read are each input's last LSTM output
and, with ``return_state``, its h and c; with ``merge`` the vector sources are concatenated
into one, and so are the sequence sources. Heads are Dense layers (per step on a sequence)
with a loss:

==================  ==========================================================
``"mse"``           mean squared error, any activation
``"bce"``           binary cross-entropy on a sigmoid head (computed from its logits)
``"bce_from_logits"``  ``BinaryCrossentropy(from_logits=True)`` on a linear head
``"bce_probabilities"`` sigmoid Dense then a Reshape: the clipped formula on probabilities
==================  ==========================================================

>>> from mlstm import testing
>>> model = testing.build_model(testing.SEED_MODEL_CONFIG)
>>> model.output_names
['out1', 'out2']
>>> [w.shape for w in model.get_layer("x1_lstm0").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mlstm.testing needs hypothesis, a test-time dependency: "
                      'pip install "mlstm[test]"') from exc

from ..gradcheck.describe import GATES, gate_block
from .builders import SEED_MODEL_CONFIG, build_model, lstm_model, randomize_weights
from .caveats import FINITE_DIFFERENCE_NOISE, gradcheck_caveats, kink_distance
from .data import Case, cases, sequences, targets
from .faults import (WRONG_BACKWARDS, WRONG_LAYER, lstm_backward_plain, use_wrong_backward,
                     wrong_backward_case)
from .gradients import GradientMismatch, assert_gradients_close
from .matches import assert_matches
from .strategies import HEAD_LOSSES, lstm_configs, model_configs
from .strategies import _sources  # noqa: F401  (what heads can read; tests use it)

__all__ = ["GATES", "SEED_MODEL_CONFIG", "HEAD_LOSSES", "lstm_configs", "model_configs",
           "sequences", "targets", "cases", "Case", "build_model", "lstm_model",
           "randomize_weights", "kink_distance", "gradcheck_caveats",
           "FINITE_DIFFERENCE_NOISE", "gate_block", "assert_gradients_close",
           "GradientMismatch", "assert_matches", "WRONG_BACKWARDS", "WRONG_LAYER",
           "lstm_backward_plain", "use_wrong_backward", "wrong_backward_case"]
