"""From Keras: :func:`from_keras` (a model object) and :func:`load_keras` (a ``.keras`` file).

The Keras graph is walked back from the outputs through ``_keras_history``; each Keras node
(one call of a layer) becomes one call of the matching mlstm layer, so shared layers stay
shared. A node's call arguments are named by the Keras layer's ``call`` signature
(``LSTM()(x, [h0, c0])`` passes ``initial_state``), handed to the mlstm layer by name, and
checked to have been taken: the mlstm node must record every tensor and give back the same
argument names through :meth:`mlstm.layers.Layer.node_call_arguments`.
"""
from __future__ import annotations

import inspect
import os
import warnings
from typing import TYPE_CHECKING, Any

from .backend import import_keras
from .compile_settings import compile_like
from .layer_mapping import copy_weights, layer_dtype, layer_from_keras, refusal

__all__ = ["from_keras", "load_keras", "load_keras_model"]

if TYPE_CHECKING:
    from ...layers.base import Layer, SymbolicTensor
    from ...model import Model


def _input_from_keras(klayer: Any, dtype: str | None = None) -> SymbolicTensor:
    """An mlstm Input like the Keras InputLayer, of ``dtype`` when given (the layers')."""
    from ...layers import Input

    config = klayer.get_config()
    for key, expected in (("sparse", False), ("ragged", False), ("optional", False)):
        if config.get(key, expected) != expected:
            raise refusal(klayer, key, config[key])
    if config.get("dtype") not in ("float32", "float64", "int32", "int64"):
        raise refusal(klayer, "dtype", config.get("dtype"),
                      "inputs must be float32 or float64 sequences or vectors, or int32/int64 "
                      "token ids")
    if config["dtype"].startswith("int"):      # token ids stay integers (an Embedding reads them)
        dtype = config["dtype"]
    return Input(shape=tuple(config["batch_shape"][1:]), name=klayer.name,
                 dtype=dtype or config["dtype"])


def _keras_mask(tensor: Any) -> Any:
    return getattr(tensor, "_keras_mask", None)


def _flatten(value: Any) -> list[Any]:
    return [t for v in value for t in _flatten(v)] if isinstance(value, (list, tuple)) \
        else [value]


def _call_arguments(op: Any, node: Any) -> tuple[Any, dict[str, Any], Any]:
    """(first argument, {name: other tensor argument}, explicit mask) of a Keras call."""
    args, kwargs = list(node.arguments.args), dict(node.arguments.kwargs)
    kwargs.pop("training", None)
    mask = kwargs.pop("mask", None)
    if not args:
        raise ValueError(f"{type(op).__name__} {op.name!r} was called without a positional "
                         "input; not supported")
    positional = [p.name for p in inspect.signature(op.call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(args) > len(positional):
        raise ValueError(f"{type(op).__name__} {op.name!r}: extra positional call arguments "
                         f"{args[len(positional):]!r} are not supported")
    for name, value in zip(positional[1:], args[1:]):
        kwargs[name] = value
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return args[0], kwargs, mask


def _convert_graph(keras_model: Any, dtype: str | None = None
                   ) -> tuple[list[SymbolicTensor], list[SymbolicTensor]]:
    """mlstm tensors for the Keras model's inputs and outputs."""
    keras = import_keras()
    layers: dict[int, Layer] = {}      # id(keras layer) -> mlstm layer (converted once)
    produced: dict[int, list[SymbolicTensor]] = {}  # id(keras node) -> mlstm tensors

    def convert(ktensor: Any) -> SymbolicTensor:
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

    def converted(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [converted(v) for v in value]
        if not isinstance(value, keras.KerasTensor):
            raise TypeError(value)
        return convert(value)

    def convert_node(op: Any, node: Any) -> list[SymbolicTensor]:
        if isinstance(op, keras.layers.InputLayer):
            if type(op) is not keras.layers.InputLayer:
                raise ValueError(f"Layer {op.name!r} is a custom InputLayer; not supported")
            return [_input_from_keras(op, dtype)]
        if not isinstance(op, keras.layers.Layer):
            raise ValueError(f"Operation {op.name!r} ({type(op).__name__}) in the model's data "
                             "path is not a layer mlstm supports; write it as a layer")
        if id(op) not in layers:
            layers[id(op)] = layer_from_keras(op)
        layer = layers[id(op)]
        first, kwargs, mask = _call_arguments(op, node)
        firsts = _flatten(first)
        if mask is not None:
            masks = mask if isinstance(mask, (list, tuple)) else [mask]
            expected = [_keras_mask(t) for t in firsts]
            if len(masks) != len(expected) or any(m is not None and m is not e
                                                  for m, e in zip(masks, expected)):
                raise ValueError(f"{type(op).__name__} {op.name!r} was called with an explicit "
                                 "mask=; mlstm supports only masks made by a Masking layer")
        if kwargs and any(_keras_mask(t) is not None for t in firsts):
            # Keras passes a layer its input's mask only when it is called with one tensor
            # argument (keras/src/layers/layer.py, "Populate mask argument(s)").
            raise ValueError(
                f"{type(op).__name__} {op.name!r} is called with {', '.join(kwargs)} on a "
                "masked input: Keras 3.15 then ignores the mask inside the layer (a layer "
                "gets its input's mask only when called with one tensor argument) while "
                "mlstm would apply it; this combination is not supported")
        try:
            inputs, named = converted(first), {k: converted(v) for k, v in kwargs.items()}
        except TypeError as exc:
            raise ValueError(f"{type(op).__name__} {op.name!r}: call argument value "
                             f"{exc.args[0]!r} is not a tensor; not supported") from None
        out = layer(inputs, **named)
        recorded = layer._inbound_nodes[-1]
        taken = layer.node_call_arguments(recorded.inputs)[1]
        given = len(firsts) + sum(len(_flatten(v)) for v in kwargs.values())
        if len(recorded.inputs) != given or set(taken) != set(named):
            raise ValueError(f"{type(op).__name__} {op.name!r}: call arguments "
                             f"{sorted(set(named) - set(taken)) or sorted(named)} are not "
                             f"supported by mlstm's {type(layer).__name__}")
        return out if isinstance(out, list) else [out]

    outputs = [convert(t) for t in keras_model.outputs]
    inputs: list[SymbolicTensor] = []
    for t in keras_model.inputs:
        op = t._keras_history[0]
        node = op._inbound_nodes[t._keras_history[1]]
        if id(node) not in produced:   # an input no output depends on
            produced[id(node)] = convert_node(op, node)
        inputs.append(produced[id(node)][0])
    return inputs, outputs


def _structure_is_single(keras_model: Any, attr: str) -> bool:
    struct = getattr(keras_model, f"_{attr}_struct", None)
    if struct is None:
        return len(getattr(keras_model, attr)) == 1
    if isinstance(struct, dict):
        if attr == "outputs":
            raise ValueError(f"Keras model {keras_model.name!r} has dict outputs; mlstm "
                             "supports a single output or a list of outputs")
        return False
    return not isinstance(struct, (list, tuple))


def _is_functional(keras_model: Any) -> bool:
    from keras.src.models.functional import Functional
    return isinstance(keras_model, Functional)


def from_keras(keras_model: Any, compile: bool = True) -> Model:
    """An :class:`mlstm.Model` with the Keras model's graph, layer names and weights.

    Parameters
    ----------
    keras_model : keras.Model
        Functional or Sequential (built), made of the Keras layers that registered mlstm
        layers declare as their ``keras_name`` (InputLayer, LSTM, Dense, Activation,
        Concatenate, Reshape, Masking among the built-ins).
    compile : bool, default True
        When the Keras model is compiled, compile the mlstm model with the same losses,
        loss weights and optimizer configuration (see :func:`compile_like`).

    Returns
    -------
    mlstm.Model
        With the same dtype as the Keras layers (float32 or float64).

    Raises
    ------
    TypeError
        When ``keras_model`` is not a ``keras.Model``.
    ValueError
        Naming the layer and the option that mlstm does not support (or the loss or
        optimizer setting, when compiling); an unsupported layer's error lists the
        supported Keras classes.

    Examples
    --------
    Needs the ``keras`` extra (``tests/test_interop_examples.py`` runs it)::

        import keras
        from mlstm.interop.keras import from_keras

        inp = keras.Input(shape=(5, 3), name="x")
        out = keras.layers.Dense(1, name="y")(keras.layers.LSTM(4, name="lstm")(inp))
        kmodel = keras.Model(inp, out)
        kmodel.compile(optimizer="adam", loss="mse")
        model = from_keras(kmodel)        # same layer names, weights and compile settings
        assert [l.name for l in model.layers] == ["x", "lstm", "y"]
    """
    keras = import_keras()
    from ...model import Model

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
    dtypes = {layer.name: layer_dtype(layer) for layer in keras_model.layers
              if not isinstance(layer, keras.layers.InputLayer)}
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"Keras model {keras_model.name!r} mixes layer dtypes {dtypes}; "
                         "mlstm needs one dtype (float32 or float64) for all layers")
    # Keras casts the inputs to the layers' compute dtype: mlstm's Inputs take that dtype.
    inputs, outputs = _convert_graph(keras_model, next(iter(dtypes.values()), None))
    model = Model(inputs[0] if single_input else inputs,
                  outputs[0] if single_output else outputs, name=keras_model.name)
    copy_weights(keras_model, model)
    if compile and getattr(keras_model, "compiled", False) and \
            getattr(keras_model, "optimizer", None) is not None:
        compile_like(model, keras_model)
    return model


def load_keras(path: str | os.PathLike[str], compile: bool = True,
               custom_objects: dict[str, Any] | None = None) -> Model:
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
    return from_keras(load_keras_model(path, compile, custom_objects), compile=compile)


def load_keras_model(path: str, compile: bool = True,
                     custom_objects: dict[str, Any] | None = None) -> Any:
    """keras.saving.load_model, without its warning about optimizer variables.

    A file saved before the optimizer was built holds 2 optimizer variables and Keras warns
    that it skips them; mlstm never uses Keras' optimizer state (both sides start fresh).
    """
    keras = import_keras()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects)
