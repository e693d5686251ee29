"""Keras interop: import, export, and a step-by-step cross-check against Keras.

Keras (``keras==3.15.1`` on ``tensorflow-cpu==2.21.0``, the ``keras`` extra) is imported only
inside the functions below, never when :mod:`mlstm` is imported.

``from_keras(keras_model)``
    A functional or Sequential Keras model built from InputLayer, LSTM, Dense, Activation,
    Concatenate, Reshape and Masking becomes an :class:`mlstm.Model` with the same layer
    names, options and weights, compiled with the same losses, loss weights and optimizer
    when the Keras model is compiled. Anything mlstm does not compute the way Keras does is
    refused with an error naming the layer and the option (GRU, Bidirectional, dropout,
    stateful, regularizers, constraints, custom layers, ...): a silent approximation would
    defeat the point of the cross-check.
``to_keras(model)``
    The other way; ``from_keras(to_keras(m))`` gives back ``m``'s graph and weights.
``load_keras(path)``
    A ``.keras`` file, compile config included.
``crosscheck(model, x, y, steps=3)``
    Runs the model in both frameworks from the same weights and compares, per output and
    per parameter: the forward pass, each output's loss, the gradients (of the total and of
    each output's weighted loss, Keras' from ``tf.GradientTape``) and the weights after each
    of ``steps`` optimizer steps (``train_on_batch``). A plain-text table, or a dict.

Keras facts this module relies on (Keras 3.15, read from its source and checked by running
it; :mod:`mlstm.layers` implements the rest):

- A Keras layer receives its input's mask only when it is called with a single tensor
  argument. ``LSTM(...)(x, initial_state=[h0, c0])`` on a masked ``x`` therefore runs
  **unmasked** while its output still carries the mask downstream. mlstm would apply the
  mask, so that combination is refused in both directions.
- ``Masking`` adds two hidden operations (``not_equal``, ``any``) to the functional graph
  that compute the mask; they are reached only through the ``mask=`` argument Keras passes
  to the next layer and are not converted (mlstm computes masks itself).
- A model's loss is ``Σ_k loss_weight_k · loss_k(y_true_k, y_pred_k)``; each ``loss_k`` is
  computed in the compile-time ``floatx`` and its logged value kept in a tracker made in
  ``floatx`` at the first training step (so float64 agreement needs
  ``keras.config.set_floatx("float64")``; :func:`to_keras` sets it while it builds and
  compiles a float64 model, :func:`crosscheck` while it runs Keras).
- Adam's bias corrections use β1, β2 cast through float32 even for float64 variables
  (:class:`mlstm.optimizers.Adam` does the same).
- Keras' optimizer starts with fresh state whenever a model is cloned, and so does the
  cross-check on both sides: what is compared is the same configuration from the same
  weights.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings

import numpy as np

__all__ = ["from_keras", "to_keras", "load_keras", "compile_like", "crosscheck",
           "format_report", "cli_main", "DEFAULT_TOLERANCES"]

#: dtype -> (rtol, atol) used by :func:`crosscheck` unless given.
DEFAULT_TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-9)}

_SUPPORTED = ("InputLayer", "LSTM", "Dense", "Activation", "Concatenate", "Reshape", "Masking")

# Per Keras class: (config options mlstm copies, options accepted only at the value shown,
# initializer options). Config keys in none of these (nor _IGNORED) are refused, so an
# option added by a later Keras cannot slip through unnoticed.
_OPTIONS = {
    "LSTM": (("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
              "return_sequences", "return_state", "go_backwards"),
             {"stateful": False, "zero_output_for_mask": False, "dropout": 0.0,
              "recurrent_dropout": 0.0, "kernel_regularizer": None,
              "recurrent_regularizer": None, "bias_regularizer": None,
              "activity_regularizer": None, "kernel_constraint": None,
              "recurrent_constraint": None, "bias_constraint": None},
             ("kernel_initializer", "recurrent_initializer", "bias_initializer")),
    "Dense": (("units", "activation", "use_bias"),
              {"kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None,
               "bias_constraint": None, "lora_rank": None, "lora_alpha": None,
               "quantization_config": None},
              ("kernel_initializer", "bias_initializer")),
    "Activation": (("activation",), {}, ()),
    "Concatenate": (("axis",), {}, ()),
    "Reshape": (("target_shape",), {}, ()),
    "Masking": (("mask_value",), {}, ()),
}
# Options that do not change a single number mlstm computes: names, the dtype (checked
# separately), the dropout seed (dropout itself must be 0), unrolling (same arithmetic).
_IGNORED = {"name", "trainable", "dtype", "seed", "unroll", "use_cudnn"}

# Keras initializer class -> mlstm name (only used if a model is re-initialized: the
# weights themselves are copied).
_INITIALIZERS = {"GlorotUniform": "glorot_uniform", "Orthogonal": "orthogonal",
                 "Zeros": "zeros", "Ones": "ones"}
_DEFAULT_INITIALIZERS = {"kernel_initializer": "glorot_uniform",
                         "recurrent_initializer": "orthogonal", "bias_initializer": "zeros"}


# =========================================================================== keras import
def _import_keras():
    """keras, imported quietly; a clear error when the extra is not installed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("mlstm.interop.keras needs Keras 3 with TensorFlow: "
                          "pip install 'mlstm[keras]' (tensorflow-cpu==2.21.0, keras==3.15.1)"
                          ) from exc
    return keras


def _import_tensorflow():
    keras = _import_keras()
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"crosscheck needs the TensorFlow backend of Keras (it uses "
                           f"tf.GradientTape); KERAS_BACKEND is {keras.backend.backend()!r}")
    import tensorflow as tf
    return keras, tf


@contextlib.contextmanager
def _floatx(dtype):
    """Temporarily set ``keras.config.floatx()`` (restored even on error)."""
    keras = _import_keras()
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


def _is_keras_model(obj):
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


# =========================================================================== from_keras
def _refuse(layer, option, value, why=""):
    return ValueError(f"{type(layer).__name__} {layer.name!r}: option {option}={value!r} is not "
                      f"supported by mlstm{': ' + why if why else ''}. Supported layers: "
                      f"{', '.join(_SUPPORTED)}; see docs/keras.md")


def _layer_dtype(layer):
    policy = layer.dtype_policy
    if policy.compute_dtype != policy.variable_dtype or policy.compute_dtype not in (
            "float32", "float64"):
        raise _refuse(layer, "dtype", policy.name, "mlstm computes in float32 or float64 only")
    return policy.compute_dtype


def _initializer_name(layer, option, spec):
    """mlstm initializer name for a serialized Keras initializer (default when unknown)."""
    if isinstance(spec, str) and spec in _INITIALIZERS.values():
        return spec
    if isinstance(spec, dict):
        cls, cfg = spec.get("class_name"), spec.get("config") or {}
        if cls in _INITIALIZERS and cfg.get("gain", 1.0) == 1.0 and not cfg.get("input_axes") \
                and not cfg.get("output_axes"):
            return _INITIALIZERS[cls]
    default = _DEFAULT_INITIALIZERS[option]
    warnings.warn(f"{type(layer).__name__} {layer.name!r}: {option} {spec!r} has no mlstm "
                  f"equivalent; the weights are copied, and {default!r} would be used only if "
                  "the mlstm model were re-initialized", stacklevel=4)
    return default


def _layer_from_keras(layer):
    """An unbuilt mlstm layer with the same options as the Keras ``layer``."""
    from .. import layers as mlayers
    from ..ops.activations import get_activation

    keras = _import_keras()
    cls = type(layer).__name__
    if cls not in _OPTIONS or type(layer) is not getattr(keras.layers, cls):
        kind = ("a nested model" if isinstance(layer, keras.Model)
                else "a custom layer" if cls in _OPTIONS else f"layer class {cls}")
        raise ValueError(f"Layer {layer.name!r} ({cls}) is {kind}, which mlstm does not "
                         f"support. Supported layers: {', '.join(_SUPPORTED)} (see "
                         "docs/keras.md)")
    copied, fixed, inits = _OPTIONS[cls]
    config = layer.get_config()
    for key, value in config.items():
        if key in _IGNORED or key in copied or key in inits:
            continue
        if key not in fixed:
            raise _refuse(layer, key, value, "mlstm does not know this option")
        if value != fixed[key]:
            raise _refuse(layer, key, value, f"only {fixed[key]!r} is")
    # Options that live on the layer object rather than in its config.
    if getattr(layer, "activity_regularizer", None) is not None:
        raise _refuse(layer, "activity_regularizer", layer.activity_regularizer)
    if getattr(layer, "lora_enabled", False):
        raise _refuse(layer, "lora_rank", getattr(layer, "lora_rank", None))
    if getattr(layer, "quantization_mode", None) is not None:
        raise _refuse(layer, "quantization_mode", layer.quantization_mode)
    kwargs = {key: config[key] for key in copied}
    for key in ("activation", "recurrent_activation"):
        if key in kwargs:
            if not isinstance(kwargs[key], str):
                raise _refuse(layer, key, kwargs[key], "only the activations linear, sigmoid, "
                              "tanh and relu are")
            try:
                kwargs[key] = get_activation(kwargs[key])
            except ValueError as exc:
                raise _refuse(layer, key, kwargs[key], str(exc)) from None
    if "target_shape" in kwargs:
        kwargs["target_shape"] = tuple(kwargs["target_shape"])
    for key in inits:
        kwargs[key] = _initializer_name(layer, key, config[key])
    kwargs.update(name=layer.name, dtype=_layer_dtype(layer), trainable=bool(layer.trainable))
    return getattr(mlayers, cls)(**kwargs)


def _input_from_keras(layer, dtype=None):
    """An mlstm Input like the Keras InputLayer, of ``dtype`` when given (the layers')."""
    from ..layers import Input

    config = layer.get_config()
    for key, expected in (("sparse", False), ("ragged", False), ("optional", False)):
        if config.get(key, expected) != expected:
            raise _refuse(layer, key, config[key])
    if config.get("dtype") not in ("float32", "float64"):
        raise _refuse(layer, "dtype", config.get("dtype"),
                      "inputs must be float32 or float64 sequences or vectors")
    return Input(shape=tuple(config["batch_shape"][1:]), name=layer.name,
                 dtype=dtype or config["dtype"])


def _keras_mask(tensor):
    return getattr(tensor, "_keras_mask", None)


def _convert_graph(keras_model, dtype=None):
    """mlstm tensors for the Keras model's inputs and outputs.

    Walks back from the outputs through ``_keras_history``; each Keras node (one call of a
    layer) becomes one call of the matching mlstm layer, so shared layers stay shared.
    """
    keras = _import_keras()
    layers = {}      # id(keras layer) -> mlstm layer (a shared layer is converted once)
    produced = {}    # id(keras node) -> list of mlstm SymbolicTensor

    def convert(ktensor):
        history = getattr(ktensor, "_keras_history", None)
        if history is None:
            raise ValueError(f"Keras tensor {ktensor!r} has no producing layer")
        op, node_index, tensor_index = history
        node = op._inbound_nodes[node_index]
        if id(node) not in produced:
            produced[id(node)] = convert_node(op, node)
        out = produced[id(node)][tensor_index]
        if isinstance(op, keras.layers.Layer) and not isinstance(op, keras.layers.InputLayer):
            # mlstm propagates masks itself; it must agree with Keras on where they go.
            keras_has = _keras_mask(ktensor) is not None
            if keras_has != out.has_mask:
                says = {True: "does", False: "does not"}
                raise ValueError(f"{type(op).__name__} {op.name!r}: Keras {says[keras_has]} "
                                 f"attach a mask to this output and mlstm "
                                 f"{says[out.has_mask]}; this graph is not supported")
        return out

    def convert_node(op, node):
        if isinstance(op, keras.layers.InputLayer):
            if type(op) is not keras.layers.InputLayer:
                raise ValueError(f"Layer {op.name!r} is a custom InputLayer; not supported")
            return [_input_from_keras(op, dtype)]
        if not isinstance(op, keras.layers.Layer):
            raise ValueError(f"Operation {op.name!r} ({type(op).__name__}) in the model's data "
                             "path is not a layer mlstm supports (only "
                             f"{', '.join(_SUPPORTED)}); write it as a layer")
        if id(op) not in layers:
            layers[id(op)] = _layer_from_keras(op)
        layer = layers[id(op)]
        args, kwargs = list(node.arguments.args), dict(node.arguments.kwargs)
        if not args:
            raise ValueError(f"{type(op).__name__} {op.name!r} was called without a "
                             "positional input; not supported")
        first = args.pop(0)
        initial_state = kwargs.pop("initial_state", None)
        if args and type(layer).__name__ == "LSTM" and initial_state is None:
            initial_state = args.pop(0)
        if args:
            raise ValueError(f"{type(op).__name__} {op.name!r}: extra positional call "
                             f"arguments {args!r} are not supported")
        kwargs.pop("training", None)
        mask = kwargs.pop("mask", None)
        if kwargs:
            raise ValueError(f"{type(op).__name__} {op.name!r}: call arguments "
                             f"{sorted(kwargs)} are not supported")
        firsts = first if isinstance(first, (list, tuple)) else [first]
        if mask is not None:
            masks = mask if isinstance(mask, (list, tuple)) else [mask]
            expected = [_keras_mask(t) for t in firsts]
            if len(masks) != len(expected) or any(m is not None and m is not e
                                                  for m, e in zip(masks, expected)):
                raise ValueError(f"{type(op).__name__} {op.name!r} was called with an explicit "
                                 "mask=; mlstm supports only masks made by a Masking layer")
        inputs = [convert(t) for t in firsts]
        if initial_state is not None:
            states = [convert(t) for t in initial_state]
            if inputs[0].has_mask:
                raise ValueError(
                    f"LSTM {op.name!r} is called with initial_state on a masked input: Keras "
                    "3.15 then ignores the mask inside the LSTM (a layer gets its input's "
                    "mask only when called with one tensor) while mlstm would apply it; "
                    "this combination is not supported")
            out = layer(inputs[0], initial_state=states)
        else:
            out = layer(inputs if isinstance(first, (list, tuple)) else inputs[0])
        return out if isinstance(out, list) else [out]

    kinputs, koutputs = list(keras_model.inputs), list(keras_model.outputs)
    outputs = [convert(t) for t in koutputs]
    inputs = []
    for t in kinputs:
        op = t._keras_history[0]
        node = op._inbound_nodes[t._keras_history[1]]
        if id(node) not in produced:   # an input no output depends on
            produced[id(node)] = convert_node(op, node)
        inputs.append(produced[id(node)][0])
    return inputs, outputs


def _structure_is_single(keras_model, attr):
    struct = getattr(keras_model, f"_{attr}_struct", None)
    if struct is None:
        return len(getattr(keras_model, attr)) == 1
    if isinstance(struct, dict):
        if attr == "outputs":
            raise ValueError(f"Keras model {keras_model.name!r} has dict outputs; mlstm "
                             "supports a single output or a list of outputs")
        return False
    return not isinstance(struct, (list, tuple))


def from_keras(keras_model, compile=True):
    """An :class:`mlstm.Model` with the Keras model's graph, layer names and weights.

    Parameters
    ----------
    keras_model : keras.Model
        Functional or Sequential (built), made of InputLayer, LSTM, Dense, Activation,
        Concatenate, Reshape and Masking.
    compile : bool
        When the Keras model is compiled, compile the mlstm model with the same losses,
        loss weights and optimizer configuration (see :func:`compile_like`).

    Returns
    -------
    mlstm.Model

    Raises
    ------
    ValueError
        Naming the layer and the option that mlstm does not support (or the loss or
        optimizer setting, when compiling).
    """
    keras = _import_keras()
    from ..model import Model

    if not isinstance(keras_model, keras.Model):
        raise TypeError(f"from_keras expects a keras.Model, got {type(keras_model).__name__}")
    if not isinstance(keras_model, keras.Sequential) and not _is_functional(keras_model):
        raise ValueError(f"Keras model {keras_model.name!r} is a subclassed model; only "
                         "functional and Sequential models can be converted")
    try:
        keras_inputs = keras_model.inputs
    except (AttributeError, ValueError):
        keras_inputs = None
    if not keras_inputs:
        raise ValueError(f"Keras model {keras_model.name!r} is not built: give it an Input "
                         "(keras.Input(shape=...)) so its graph exists")
    single_input = _structure_is_single(keras_model, "inputs")
    single_output = _structure_is_single(keras_model, "outputs")
    dtypes = {layer.name: _layer_dtype(layer) for layer in keras_model.layers
              if not isinstance(layer, keras.layers.InputLayer)}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"Keras model {keras_model.name!r} mixes layer dtypes {dtypes}; "
                         "mlstm needs one dtype (float32 or float64) for all layers")
    # Keras casts the inputs to the layers' compute dtype: mlstm's Inputs take that dtype.
    inputs, outputs = _convert_graph(keras_model, next(iter(dtypes.values()), None))
    model = Model(inputs[0] if single_input else inputs,
                  outputs[0] if single_output else outputs, name=keras_model.name)
    _copy_weights(keras_model, model)
    if compile and getattr(keras_model, "compiled", False) and \
            getattr(keras_model, "optimizer", None) is not None:
        compile_like(model, keras_model)
    return model


def _is_functional(keras_model):
    from keras.src.models.functional import Functional
    return isinstance(keras_model, Functional)


# --------------------------------------------------------------------------- compile config
def _loss_from_keras(spec, where):
    """An mlstm loss for one Keras loss spec (name, function or Loss instance)."""
    keras = _import_keras()
    from .. import losses

    if spec is None:
        return None
    resolved = keras.losses.get(spec) if isinstance(spec, str) else spec
    if resolved is keras.losses.mean_squared_error:
        return losses.MeanSquaredError()
    if resolved is keras.losses.binary_crossentropy:
        return losses.BinaryCrossentropy()
    if type(resolved) in (keras.losses.MeanSquaredError, keras.losses.BinaryCrossentropy):
        config = resolved.get_config()
        if config.get("reduction") != "sum_over_batch_size":
            raise ValueError(f"{where}: loss {config['name']!r} with reduction "
                             f"{config.get('reduction')!r} is not supported (only "
                             "'sum_over_batch_size', Keras' default)")
        if type(resolved) is keras.losses.MeanSquaredError:
            return losses.MeanSquaredError()
        if config.get("axis", -1) != -1:
            raise ValueError(f"{where}: BinaryCrossentropy(axis={config['axis']}) is not "
                             "supported (only axis=-1)")
        return losses.BinaryCrossentropy(from_logits=config["from_logits"],
                                         label_smoothing=config["label_smoothing"])
    name = getattr(resolved, "__name__", None) or getattr(resolved, "name", repr(resolved))
    raise ValueError(f"{where}: loss {name!r} has no mlstm translation (built in: mean "
                     "squared error, binary cross-entropy). Convert with compile=False and "
                     "compile the mlstm model with a NumPy version of it (a "
                     "mlstm.losses.Loss subclass or a function)")


def _optimizer_from_keras(optimizer):
    keras = _import_keras()
    from .. import optimizers

    cls = type(optimizer).__name__
    mine = {c.__name__: c for c in optimizers.OPTIMIZERS.values()}.get(cls)
    if mine is None or type(optimizer) is not getattr(keras.optimizers, cls, None):
        raise ValueError(f"optimizer {cls} is not supported (mlstm has "
                         f"{' and '.join(c.__name__ for c in optimizers.OPTIMIZERS.values())})")
    config = optimizer.get_config()
    for key, expected in (("use_ema", False), ("loss_scale_factor", None),
                          ("gradient_accumulation_steps", None)):
        if config.get(key, expected) != expected:
            raise ValueError(f"optimizer {cls}: option {key}={config[key]!r} is not supported")
    if not isinstance(config["learning_rate"], (int, float)):
        raise ValueError(f"optimizer {cls}: a learning-rate schedule "
                         f"({config['learning_rate']!r}) is not supported; use a constant")
    # mlstm's optimizer configs use Keras' option names (to_keras passes them as they are):
    # the options mlstm has are read from Keras' config by those names.
    return mine.from_config({key: config[key] for key in mine().get_config()})


def _keras_compile_args(keras_model):
    """The loss and loss_weights the Keras model was compiled with (as given by the user)."""
    stored = getattr(keras_model, "_compile_config", None)
    config = getattr(stored, "config", None) or {}
    loss = config.get("loss", getattr(keras_model, "loss", None))
    return loss, config.get("loss_weights")


def compile_like(model, keras_model):
    """Compile the mlstm ``model`` with the Keras model's losses, loss weights and optimizer.

    Raises ValueError naming what has no mlstm translation (a custom loss, a schedule...).
    """
    loss, loss_weights = _keras_compile_args(keras_model)
    if loss is None:
        raise ValueError(f"Keras model {keras_model.name!r} was compiled without a loss")
    if isinstance(loss, dict):
        mloss = {name: _loss_from_keras(spec, f"output {name!r}") for name, spec in loss.items()}
    elif isinstance(loss, (list, tuple)):
        names = model.output_names + [f"#{k}" for k in range(len(model.output_names), len(loss))]
        mloss = [_loss_from_keras(spec, f"output {name!r}") for name, spec in zip(names, loss)]
    else:
        mloss = _loss_from_keras(loss, "loss")
    if isinstance(loss_weights, (int, float)):
        loss_weights = [float(loss_weights)]
    elif isinstance(loss_weights, tuple):
        loss_weights = list(loss_weights)
    model.compile(optimizer=_optimizer_from_keras(keras_model.optimizer), loss=mloss,
                  loss_weights=loss_weights)
    return model


# =========================================================================== to_keras
def _keras_layer(layer):
    """A Keras layer with the options of the mlstm ``layer`` (unbuilt)."""
    keras = _import_keras()
    cls = type(layer).__name__
    config = layer.get_config()
    config.pop("seed", None)
    for key in _DEFAULT_INITIALIZERS:
        if key in config and not isinstance(config[key], str):
            config[key] = _DEFAULT_INITIALIZERS[key]   # a callable: the weights are copied
    if cls not in _OPTIONS:
        raise ValueError(f"Layer {layer.name!r} ({cls}) has no Keras translation")
    if "target_shape" in config:
        config["target_shape"] = tuple(config["target_shape"])
    return getattr(keras.layers, cls)(**config)


def _loss_to_keras(loss, where):
    keras = _import_keras()
    from .. import losses

    if loss is None:
        return None
    if type(loss) is losses.MeanSquaredError:
        return keras.losses.MeanSquaredError()
    if type(loss) is losses.BinaryCrossentropy:
        return keras.losses.BinaryCrossentropy(from_logits=loss.from_logits,
                                               label_smoothing=loss.label_smoothing)
    raise ValueError(f"{where}: loss {loss.name!r} ({type(loss).__name__}) has no Keras "
                     "translation; call to_keras(model, compile=False) and compile the Keras "
                     "model with a Keras version of it")


def _optimizer_to_keras(optimizer):
    keras = _import_keras()
    config = optimizer.get_config()
    name = config.pop("name")
    if name == "adam":
        return keras.optimizers.Adam(**config)
    if name == "sgd":
        return keras.optimizers.SGD(**config)
    raise ValueError(f"optimizer {name!r} has no Keras translation")


def to_keras(model, compile=True):
    """A Keras model with the same graph, layer names, options and weights as ``model``.

    Parameters
    ----------
    model : mlstm.Model
    compile : bool
        When ``model`` is compiled, compile the Keras model with the same losses, loss
        weights and optimizer configuration (fresh optimizer state). A float64 model is
        built and compiled with ``keras.config.floatx()`` set to float64 (restored after),
        so that Keras computes its losses in float64 too.

    Returns
    -------
    keras.Model
    """
    keras = _import_keras()
    from ..layers import InputLayer

    with _floatx(model.dtype):
        ktensors = {}     # id(mlstm SymbolicTensor) -> Keras tensor
        klayers = {}      # id(mlstm layer) -> Keras layer
        for node in model.nodes:
            layer = node.layer
            if isinstance(layer, InputLayer):
                t = node.outputs[0]
                ktensors[id(t)] = keras.Input(shape=layer.shape, name=layer.name,
                                              dtype=layer.dtype)
                continue
            if id(layer) not in klayers:
                klayers[id(layer)] = _keras_layer(layer)
            klayer = klayers[id(layer)]
            ins = [ktensors[id(t)] for t in node.inputs]
            if type(layer).__name__ == "LSTM" and len(ins) == 3:
                if node.inputs[0].has_mask:
                    raise ValueError(
                        f"LSTM {layer.name!r} is called with initial_state on a masked input; "
                        "Keras 3.15 would ignore the mask inside the LSTM (see "
                        "mlstm.interop.keras), so the two would not compute the same thing")
                out = klayer(ins[0], initial_state=ins[1:])
            elif type(layer).__name__ == "Concatenate":
                out = klayer(ins)
            else:
                out = klayer(ins[0])
            outs = out if isinstance(out, (list, tuple)) else [out]
            for t, kt in zip(node.outputs, outs):
                ktensors[id(t)] = kt
        kin = [ktensors[id(t)] for t in model.inputs]
        kout = [ktensors[id(t)] for t in model.outputs]
        kmodel = keras.Model(kin[0] if model._single_input else kin,
                             kout[0] if model._single_output else kout, name=model.name)
        _copy_weights(model, kmodel)
        if compile and model.compiled:
            losses = [_loss_to_keras(l, f"output {name!r}")
                      for name, l in zip(model.output_names, model._losses)]
            kmodel.compile(optimizer=_optimizer_to_keras(model.optimizer),
                           loss=losses[0] if len(losses) == 1 else losses,
                           loss_weights=list(model._loss_weights))
    return kmodel


# =========================================================================== load_keras
def load_keras(path, compile=True, custom_objects=None):
    """Load a ``.keras`` file as an :class:`mlstm.Model` (compile config included).

    Parameters
    ----------
    path : str or os.PathLike
    compile : bool
        Load Keras' compile config (losses, loss weights, optimizer) and compile the mlstm
        model the same way. With ``compile=False`` the model comes uncompiled.
    custom_objects : dict, optional
        Passed to ``keras.saving.load_model`` (e.g. a custom loss, so that the file loads;
        such a loss then needs ``compile=False`` here and a NumPy version in mlstm).
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"load_keras expects a .keras file, got {path!r}")
    return from_keras(_load_keras_model(path, compile, custom_objects), compile=compile)


def _load_keras_model(path, compile=True, custom_objects=None):
    """keras.saving.load_model, without its warning about optimizer variables.

    A file saved before the optimizer was built holds 2 optimizer variables and Keras warns
    that it skips them; mlstm never uses Keras' optimizer state (both sides start fresh).
    """
    keras = _import_keras()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects)


# =========================================================================== crosscheck
def _clone_keras(keras_model):
    """A compiled copy of a Keras model: same graph, weights, losses and optimizer config."""
    keras = _import_keras()
    loss, loss_weights = _keras_compile_args(keras_model)
    if not getattr(keras_model, "compiled", False) or loss is None:
        raise ValueError(f"Keras model {keras_model.name!r} must be compiled (with a loss and "
                         "an optimizer) to be cross-checked")
    loss_dtype = getattr(getattr(keras_model, "_compile_loss", None), "dtype", None) \
        or keras.config.floatx()
    with _floatx(loss_dtype):
        # Rebuilt from its config rather than keras.models.clone_model, which would also
        # deserialize the compile config and fail on an unregistered custom loss.
        twin = type(keras_model).from_config(keras_model.get_config())
        twin.set_weights(keras_model.get_weights())
        optimizer = type(keras_model.optimizer).from_config(keras_model.optimizer.get_config())
        twin.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                     run_eagerly=bool(getattr(keras_model, "run_eagerly", False)))
    return twin


def _pair(model, twin):
    """(mlstm model, Keras model): compiled copies with the same weights."""
    from ..model import Model

    if isinstance(model, Model):
        if not model.compiled:
            raise ValueError("crosscheck needs a compiled mlstm model (model.compile(...))")
        mine = model.clone()
        if twin is None:
            theirs = to_keras(model)
        else:
            if not _is_keras_model(twin):
                raise TypeError(f"twin must be a keras.Model, got {type(twin).__name__}")
            theirs = _clone_keras(twin)
            _copy_weights(mine, theirs)
        return mine, theirs, "mlstm"
    if _is_keras_model(model):
        theirs = _clone_keras(model)
        if twin is None:
            mine = from_keras(model)
            if not mine.compiled:
                raise ValueError("crosscheck needs a compiled Keras model")
        else:
            if not isinstance(twin, Model) or not twin.compiled:
                raise TypeError("twin must be a compiled mlstm.Model")
            mine = twin.clone()
            _copy_weights(model, mine)
        return mine, theirs, "keras"
    raise TypeError(f"crosscheck expects an mlstm.Model or a keras.Model, got "
                    f"{type(model).__name__}")


def _copy_weights(source, target):
    """Set each layer of ``target`` that has weights from the layer of the same name in
    ``source``; either model may be mlstm's or Keras' (same layer names, same weight order)."""
    for layer in source.layers:
        weights = layer.get_weights()
        if weights:
            target.get_layer(layer.name).set_weights(weights)


def _weight_names(model, keras_model):
    """{id(Keras variable): "layer/weight"}, matched by layer name and Keras weight order."""
    names = {}
    for klayer in keras_model.layers:
        if not klayer.weights:
            continue
        try:
            layer = model.get_layer(klayer.name)
        except ValueError:
            raise ValueError(f"Keras layer {klayer.name!r} has no mlstm layer of the same name; "
                             "the two models must have the same layer names") from None
        if len(layer.weight_names) != len(klayer.weights):
            raise ValueError(f"layer {klayer.name!r}: Keras has {len(klayer.weights)} weights, "
                             f"mlstm {len(layer.weight_names)}")
        for var, name in zip(klayer.weights, layer.weight_names):
            names[id(var)] = name
    return names


def _diff(mine, theirs, rtol, atol, keep_values=False):
    """max |Δ|, max relative |Δ| (relative to max(|keras|, atol)) and the allclose verdict."""
    a = np.asarray(mine, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: mlstm {a.shape}, Keras {b.shape}")
    d = np.abs(a - b)
    out = {"max_abs": float(d.max()) if d.size else 0.0,
           "max_rel": float((d / np.maximum(np.abs(b), atol)).max()) if d.size else 0.0,
           "ok": bool(np.all(d <= atol + rtol * np.abs(b)))}
    if keep_values:
        out.update(mlstm=float(a), keras=float(b))
    return out


def _keras_output_losses(keras_model, ys, y_pred, output_names):
    """[(output index, unweighted loss, weight)] from Keras' own compiled loss objects."""
    flat = getattr(keras_model._compile_loss, "_flat_losses", None)
    if flat is None:
        raise RuntimeError("Keras' compiled loss is not built (Keras internals changed?)")
    keras_names = list(getattr(keras_model, "output_names", output_names))
    per = []
    for path, loss_fn, weight, _ in flat:
        if len(path) == 0:
            k = 0
        elif isinstance(path[0], str):
            k = keras_names.index(path[0])
        else:
            k = int(path[0])
        per.append((k, loss_fn(ys[k], y_pred[k]), 1.0 if weight is None else weight))
    return per


def _keras_structure(arrays, single):
    return arrays[0] if single else list(arrays)


def crosscheck(model, x, y, steps=3, twin=None, as_dict=False, rtol=None, atol=None,
               run_eagerly=None):
    """Run ``model`` in mlstm and in Keras from the same weights and compare every number.

    Parameters
    ----------
    model : mlstm.Model or keras.Model
        Compiled (losses, loss weights, optimizer). Neither it nor ``twin`` is modified:
        both sides are compiled copies with fresh optimizer state.
    x, y : array, list of arrays or dict by name
        One batch: inputs (N, T, D) per input and targets per output.
    steps : int
        Optimizer steps (``train_on_batch`` on ``(x, y)``) to compare.
    twin : keras.Model or mlstm.Model, optional
        The compiled counterpart in the other framework, when it cannot be translated
        (a custom loss written once in Keras and once in NumPy, for instance); its weights
        are replaced by ``model``'s (in a copy).
    as_dict : bool
        Return the report as a dict instead of a plain-text table.
    rtol, atol : float, optional
        Tolerances of the verdicts, ``|mlstm - keras| <= atol + rtol |keras|`` entrywise;
        by default 1e-4 / 1e-5 in float32 and 1e-9 / 1e-9 in float64.
    run_eagerly : bool, optional
        Run Keras' training steps eagerly. By default (None) Keras decides as ``fit``
        would: a traced ``tf.function`` (about 2 s of tracing per model), unless the model
        was compiled with ``run_eagerly=True``. The arithmetic is the same either way.

    Returns
    -------
    str or dict
        The dict has ``forward`` {output: diff}, ``loss`` {"total" | output: diff with the
        two values}, ``gradients`` {"total" | output: {param: diff}} (an output's entry is
        the gradient of its *weighted* loss), ``steps`` [{"loss": ..., "weights":
        {param: diff}}], ``max_abs`` per section, ``ok``, and the settings. Each diff is
        ``{"max_abs", "max_rel", "ok"}``.
    """
    keras, tf = _import_tensorflow()
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    mine, theirs, started = _pair(model, twin)
    if run_eagerly is not None:
        theirs.run_eagerly = bool(run_eagerly)
    dtype = mine.dtype
    default_rtol, default_atol = DEFAULT_TOLERANCES[dtype]
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    xs = mine._inputs(x)
    ys = mine._targets(y, xs[0].shape[0])
    kx = _keras_structure(xs, mine._single_input)
    ky = _keras_structure(ys, mine._single_output)

    report = {"started_as": started, "dtype": dtype, "rtol": rtol, "atol": atol,
              "run_eagerly": bool(theirs.run_eagerly),
              "samples": int(xs[0].shape[0]), "steps": [], "keras": keras.__version__,
              "tensorflow": tf.__version__}
    # Keras makes some tensors in floatx while it runs (the compiled loss builds its
    # per-output loss trackers at the first call, for instance): the Keras side runs with
    # floatx = the model's dtype, as float64 Keras training is meant to be run.
    with _floatx(dtype):
        _compare(mine, theirs, xs, ys, kx, ky, steps, rtol, atol, report)
    return report if as_dict else format_report(report)


def _compare(mine, theirs, xs, ys, kx, ky, steps, rtol, atol, report):
    """Fill ``report`` with the comparisons of :func:`crosscheck`."""
    import tensorflow as tf

    names = mine.output_names
    var_names = _weight_names(mine, theirs)

    # ---- forward, losses, gradients (mlstm)
    tape = mine.forward(xs, training=True)
    result = mine.loss_and_output_grads(tape, ys)
    grads_total = mine.backward(tape, result.d_outputs, result.d_logits)
    grads_per = {k: mine.backward(tape, *result.for_output(k))
                 for k in range(len(names)) if result.per_output[k] is not None}

    # ---- the same in Keras, with its own compiled loss objects
    trainable = list(theirs.trainable_weights)
    with tf.GradientTape(persistent=True) as gtape:
        y_pred = theirs(kx, training=True)
        y_pred_list = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        total = theirs.compute_loss(x=kx, y=ky, y_pred=y_pred, training=True)
        per = _keras_output_losses(theirs, ys, y_pred_list, names)
        weighted = {k: value * weight for k, value, weight in per}
    k_grads_total = gtape.gradient(total, trainable)
    k_grads_per = {k: gtape.gradient(w, trainable) for k, w in weighted.items()}
    del gtape

    report["forward"] = {name: _diff(tape.outputs[k], np.asarray(y_pred_list[k]), rtol, atol)
                         for k, name in enumerate(names)}
    losses = {"total": _diff(result.total, float(total), rtol, atol, keep_values=True)}
    keras_per = {k: float(value) for k, value, _ in per}
    for k, name in enumerate(names):
        if result.per_output[k] is not None or k in keras_per:
            if result.per_output[k] is None or k not in keras_per:
                raise ValueError(f"output {name!r} has a loss in only one of the models")
            losses[name] = _diff(result.per_output[k], keras_per[k], rtol, atol,
                                 keep_values=True)
    report["loss"] = losses

    def grad_table(mine_grads, keras_grads):
        table = {}
        for var, g in zip(trainable, keras_grads):
            name = var_names[id(var)]
            g = np.zeros(var.shape) if g is None else np.asarray(tf.convert_to_tensor(g))
            table[name] = _diff(mine_grads[name], g, rtol, atol)
        return table

    report["gradients"] = {"total": grad_table(grads_total, k_grads_total)}
    for k in sorted(k_grads_per):
        report["gradients"][names[k]] = grad_table(grads_per[k], k_grads_per[k])

    # ---- optimizer steps
    params = mine.params     # the live arrays: they follow every step
    for step in range(1, steps + 1):
        k_logs = theirs.train_on_batch(kx, ky, return_dict=True)
        m_logs = mine.train_on_batch(xs, ys, return_dict=True)
        step_losses = {key: _diff(m_logs[key], k_logs[key], rtol, atol, keep_values=True)
                       for key in m_logs if key.endswith("loss") and key in k_logs}
        weights = {}
        for klayer in theirs.layers:
            for var in klayer.weights:
                name = var_names[id(var)]
                weights[name] = _diff(params[name], np.asarray(var.numpy()), rtol, atol)
        report["steps"].append({"step": step, "loss": step_losses, "weights": weights})

    sections = {"forward": list(report["forward"].values()),
                "loss": list(report["loss"].values()),
                "gradients": [d for table in report["gradients"].values()
                              for d in table.values()],
                "step losses": [d for s in report["steps"] for d in s["loss"].values()],
                "weights": [d for s in report["steps"] for d in s["weights"].values()]}
    report["max_abs"] = {key: max((d["max_abs"] for d in ds), default=0.0)
                         for key, ds in sections.items()}
    all_diffs = [d for ds in sections.values() for d in ds]
    report["checked"] = len(all_diffs)
    report["failed"] = sum(not d["ok"] for d in all_diffs)
    report["ok"] = report["failed"] == 0


def format_report(report):
    """The plain-text table of a :func:`crosscheck` dict."""
    lines = [f"crosscheck: mlstm vs Keras {report['keras']} (TensorFlow {report['tensorflow']}), "
             f"{report['dtype']}, {report['samples']} samples, started as {report['started_as']}, "
             f"Keras {'eager' if report['run_eagerly'] else 'graph (tf.function)'}",
             f"verdict per entry: |mlstm - keras| <= {report['atol']:g} + {report['rtol']:g} "
             "|keras|", ""]
    header = f"{'what':<26} {'name':<34} {'max |diff|':>11} {'max rel':>10}  ok"
    lines += [header, "-" * len(header)]

    def row(what, name, d, extra=""):
        lines.append(f"{what:<26} {name:<34} {d['max_abs']:>11.3e} {d['max_rel']:>10.3e}  "
                     f"{'yes' if d['ok'] else 'NO'}{extra}")

    def values(d):
        return f"  (mlstm {d['mlstm']:.8g}, keras {d['keras']:.8g})"

    for name, d in report["forward"].items():
        row("forward", name, d)
    for name, d in report["loss"].items():
        row("loss" if name == "total" else "loss (unweighted)", name, d, values(d))
    for group, table in report["gradients"].items():
        what = "gradient of total" if group == "total" else f"gradient of {group} (wtd)"
        for name, d in table.items():
            row(what, name, d)
    for s in report["steps"]:
        for key, d in s["loss"].items():
            row(f"step {s['step']} loss", key, d, values(d))
        for name, d in s["weights"].items():
            row(f"step {s['step']} weights", name, d)
    lines.append("-" * len(header))
    lines.append("max |diff|: " + ", ".join(f"{k} {v:.3e}" for k, v in report["max_abs"].items()))
    if report["ok"]:
        lines.append(f"OK: all {report['checked']} comparisons within tolerance")
    else:
        lines.append(f"MISMATCH: {report['failed']} of {report['checked']} comparisons outside "
                     "tolerance (rows marked NO)")
    return "\n".join(lines)


# =========================================================================== command line
def _demo_pair(samples, seed):
    from ..demo import build_demo_model, compile_demo_model
    from ..data import make_demo_data

    data = make_demo_data(n_samples=samples, timesteps=20, features=(8, 8), seed=seed)
    model = compile_demo_model(build_demo_model(seed=seed))
    return model, [data["x1"], data["x2"]], [data["y1"], data["y2"]]


def _npz_arrays(path, keras_model, samples):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    in_names = [t._keras_history[0].name for t in keras_model.inputs]
    out_names = [t._keras_history[0].name for t in keras_model.outputs]

    def pick(names, prefix):
        if all(n in arrays for n in names):
            return [arrays[n] for n in names]
        if len(names) == 1 and prefix in arrays:
            return [arrays[prefix]]
        positional = [f"{prefix}{k}" for k in range(len(names))]
        if all(n in arrays for n in positional):
            return [arrays[n] for n in positional]
        raise ValueError(f"{path}: expected arrays named {names} (or {positional}"
                         f"{' or ' + repr(prefix) if len(names) == 1 else ''}); the file has "
                         f"{sorted(arrays)}")

    xs, ys = pick(in_names, "x"), pick(out_names, "y")
    if samples:
        xs, ys = [a[:samples] for a in xs], [a[:samples] for a in ys]
    return xs, ys


def cli_main(argv=None):
    """``python -m mlstm crosscheck [MODEL.keras DATA.npz] [--steps N] [--json] ...``.

    Returns 0 when every comparison is within tolerance, 1 otherwise (bad arguments or
    data exit with status 2 and a message).
    """
    parser = argparse.ArgumentParser(
        prog="python -m mlstm crosscheck",
        description="Compare mlstm with Keras number by number: forward pass, per-output "
                    "losses, gradients (total and per output), weights after each optimizer "
                    "step. Without arguments: the demo model on built-in data.")
    parser.add_argument("model", nargs="?", help="a compiled model saved as .keras")
    parser.add_argument("data", nargs="?", help=".npz with inputs and targets, named after "
                        "the model's inputs and outputs (or x/y, x0../y0..)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (default 3)")
    parser.add_argument("--samples", type=int, default=None,
                        help="use only the first N samples (demo: 64)")
    parser.add_argument("--seed", type=int, default=0, help="demo model and data seed")
    parser.add_argument("--eager", action="store_true",
                        help="run Keras eagerly (no ~2 s tf.function tracing; same arithmetic)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if (args.model is None) != (args.data is None):
        parser.error("give both a .keras model and a .npz of inputs/targets, or neither")
    if args.steps < 0 or (args.samples is not None and args.samples <= 0):
        parser.error("--steps must be >= 0 and --samples > 0")
    try:
        if args.model is None:
            model, x, y = _demo_pair(args.samples or 64, args.seed)
        else:
            model = _load_keras_model(args.model)
            x, y = _npz_arrays(args.data, model, args.samples)
        report = crosscheck(model, x, y, steps=args.steps, as_dict=True,
                            run_eagerly=True if args.eager else None)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0 if report["ok"] else 1
