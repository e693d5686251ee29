"""Builders: a compiled Model from a model config, a one-LSTM Model from an LSTM config,
and weights drawn so that no two gate blocks share values."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from .. import losses as losses_module
from ..layers import LSTM, Dense, Input, Masking, Reshape, concatenate
from ..model import Model
from .strategies import HEAD_LOSSES, _sources

if TYPE_CHECKING:
    from ..layers.base import SymbolicTensor
    from ..losses.base import Loss
    from ..optimizers.base import Optimizer

__all__ = ["SEED_MODEL_CONFIG", "build_model", "lstm_model", "randomize_weights"]

#: The seed article's model (two inputs, an LSTM each, concatenate, a linear MSE head and a
#: sigmoid BCE head, loss weights 0.7/0.3), small, as a config.
SEED_MODEL_CONFIG = {
    "dtype": "float64", "timesteps": 4, "merge": True,
    "inputs": [
        {"name": name, "features": 3, "masking": False,
         "lstms": [{"units": 2, "activation": "tanh", "recurrent_activation": "sigmoid",
                    "use_bias": True, "return_sequences": False, "return_state": False,
                    "go_backwards": False, "initial_state": None}]}
        for name in ("x1", "x2")],
    "heads": [
        {"name": "out1", "source": 0, "units": 1, "activation": "linear", "loss": "mse",
         "loss_weight": 0.7},
        {"name": "out2", "source": 0, "units": 1, "activation": "sigmoid", "loss": "bce",
         "loss_weight": 0.3}],
}

_LSTM_OPTIONS = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences",
                 "return_state", "go_backwards")




def _head_loss(name: str) -> Loss:
    if name == "mse":
        return losses_module.MeanSquaredError()
    if name == "bce_from_logits":
        return losses_module.BinaryCrossentropy(from_logits=True)
    if name in ("bce", "bce_probabilities"):
        return losses_module.BinaryCrossentropy()
    raise ValueError(f"Unknown head loss {name!r}; valid: {sorted(HEAD_LOSSES)}")


def build_model(config: dict[str, Any], seed: int = 0,
                weights: Literal["keras", "random"] = "keras",
                optimizer: str | Optimizer = "adam") -> Model:
    """A compiled :class:`mlstm.Model` from a :func:`model_configs` dict.

    Parameters
    ----------
    config : dict
        See the module docstring.
    seed : int
        Layer k's initializers are seeded with ``seed + k`` (reproducible, distinct).
    weights : {"keras", "random"}
        Keras' initializers, or :func:`randomize_weights` (every weight, biases included,
        drawn from a normal distribution: no zero or repeated gate blocks).
    optimizer : str or Optimizer

    Returns
    -------
    Model
        Inputs per branch: ``<name>`` (N, T, D), then ``<name>_h0``, ``<name>_c0`` (N, H) when
        its first LSTM takes ``initial_state="input"``; outputs named after the heads.
    """
    dtype = config.get("dtype", "float64")
    T = config["timesteps"]
    seeds = itertools.count(seed)
    model_inputs: list[SymbolicTensor] = []
    branch_outputs: list[list[SymbolicTensor]] = []
    for branch in config["inputs"]:
        name = branch["name"]
        x = Input(shape=(T, branch["features"]), name=name, dtype=dtype)
        model_inputs.append(x)
        h = Masking(0.0, name=f"{name}_masking")(x) if branch.get("masking") else x
        states = None
        for k, options in enumerate(branch["lstms"]):
            layer = LSTM(**{key: options[key] for key in _LSTM_OPTIONS},
                         name=f"{name}_lstm{k}", seed=next(seeds))
            initial = options.get("initial_state")
            if initial == "input":
                units = options["units"]
                h0 = Input(shape=(units,), name=f"{name}_h0", dtype=dtype)
                c0 = Input(shape=(units,), name=f"{name}_c0", dtype=dtype)
                model_inputs += [h0, c0]
                out = layer(h, initial_state=[h0, c0])
            elif initial == "previous":
                if states is None:
                    raise ValueError(f"config: {name}_lstm{k} takes initial_state='previous' "
                                     "but the LSTM below it has no return_state")
                out = layer(h, initial_state=states)
            elif initial is None:
                out = layer(h)
            else:
                raise ValueError(f"config: {name}_lstm{k}: initial_state must be None, 'input' "
                                 f"or 'previous', got {initial!r}")
            if options["return_state"]:
                out = cast("list[SymbolicTensor]", out)     # [output, h, c]
                h, states = out[0], out[1:]
            else:
                h, states = out, None
        branch_outputs.append([h] + (list(states) if states is not None else []))
    sources: list[SymbolicTensor] = []
    for kind, members in _sources(config):
        tensors = [branch_outputs[b][i] for b, i in members]
        sources.append(tensors[0] if len(tensors) == 1
                       else concatenate(tensors, name=f"merged_{kind}"))
    outputs: list[SymbolicTensor] = []
    head_losses: list[Loss] = []
    loss_weights: list[float] = []
    for head in config["heads"]:
        if head["activation"] not in HEAD_LOSSES.get(head["loss"], ()):
            raise ValueError(f"config: head {head['name']!r} has loss {head['loss']!r}, which "
                             f"needs activation in {HEAD_LOSSES.get(head['loss'])}, got "
                             f"{head['activation']!r}")
        source = sources[head["source"]]
        if head["loss"] == "bce_probabilities":
            # A Reshape after the sigmoid hides the logits: BCE then uses the clipped
            # probabilities (as Keras does when the sigmoid output is not the loss' input).
            p = Dense(head["units"], activation="sigmoid", name=f"{head['name']}_sigmoid",
                           seed=next(seeds))(source)
            # a head's shape has no free axis (T is fixed): ints
            head_out = Reshape(cast("tuple[int, ...]", p.shape), name=head["name"])(p)
        else:
            head_out = Dense(head["units"], activation=head["activation"], name=head["name"],
                             seed=next(seeds))(source)
        outputs.append(head_out)
        head_losses.append(_head_loss(head["loss"]))
        loss_weights.append(float(head.get("loss_weight", 1.0)))
    model = Model(model_inputs, outputs, name="drawn")
    model.compile(optimizer=optimizer, loss=head_losses, loss_weights=loss_weights)
    if weights == "random":
        randomize_weights(model, seed)
    elif weights != "keras":
        raise ValueError(f"weights must be 'keras' or 'random', got {weights!r}")
    return model


def lstm_model(config: dict[str, Any], seed: int = 0) -> Model:
    """A one-LSTM :class:`mlstm.Model` from an :func:`lstm_configs` dict.

    Inputs: ``x`` (N, T, D) (``timesteps`` may be None: any T), then ``h0``, ``c0`` (N, H)
    with ``initial_state="input"``. A ``Masking(0.0)`` named ``masking`` sits in front when
    ``masking``. The LSTM is named ``lstm`` (parameters ``lstm/kernel``,
    ``lstm/recurrent_kernel``, ``lstm/bias``); outputs are its outputs (with
    ``return_state``: the output, h and c).
    """
    dtype = config.get("dtype", "float64")
    x = Input(shape=(config.get("timesteps"), config["features"]), name="x", dtype=dtype)
    inputs = [x]
    h = Masking(0.0, name="masking")(x) if config.get("masking") else x
    layer = LSTM(**{key: config[key] for key in _LSTM_OPTIONS if key in config}, name="lstm",
                 seed=seed)
    if config.get("initial_state") == "input":
        h0 = Input(shape=(config["units"],), name="h0", dtype=dtype)
        c0 = Input(shape=(config["units"],), name="c0", dtype=dtype)
        inputs += [h0, c0]
        out = layer(h, initial_state=[h0, c0])
    else:
        out = layer(h)
    return Model(inputs if len(inputs) > 1 else x, out, name="lstm_model")


def randomize_weights(model: Model, seed: int, scale: float = 0.6) -> Model:
    """Set every parameter to ``scale`` × standard normal draws (seeded), in place.

    Unlike Keras' initial weights (zero biases, forget bias 1), no two gate blocks share
    values, so a gate-order slip in another implementation changes the numbers.
    """
    rng = np.random.default_rng(seed)
    for array in model.params.values():
        array[...] = scale * rng.standard_normal(array.shape)
    return model


def _as_model(obj: Model | dict[str, Any]) -> Model:
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, dict) and "inputs" in obj and "heads" in obj:
        return build_model(obj)
    if isinstance(obj, dict) and "units" in obj:
        return lstm_model(obj)
    raise TypeError("expected an mlstm Model, a model_configs() dict or an lstm_configs() "
                    f"dict, got {type(obj).__name__}")


