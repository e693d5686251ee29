"""To Keras: :func:`to_keras`.

Each node of the mlstm graph becomes one call of the Keras twin of its layer (the class the
mlstm layer names as ``keras_name``), with the call arguments the layer gives for the
node's tensors (:meth:`mlstm.layers.Layer.node_call_arguments`: one tensor, a list, or the
sequence and ``initial_state``). Every Keras layer gets the mlstm layer's dtype, so a
float64 model is float64 in Keras whatever Keras' global dtype policy says.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import import_keras, keras_dtype
from .compile_settings import compile_keras_like
from .layer_mapping import copy_weights, keras_layer

__all__ = ["to_keras"]

if TYPE_CHECKING:
    from ...layers.base import Layer, Node
    from ...model import Model


def _call_keras_layer(klayer: Any, layer: Layer, node: Node, ktensors: dict[int, Any]) -> Any:
    """Call the Keras layer on the Keras tensors of ``node``'s inputs, as mlstm calls it."""
    if node.call_kwargs:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: call options "
                         f"{sorted(node.call_kwargs)} have no Keras translation")
    args, kwargs = layer.node_call_arguments([ktensors[id(t)] for t in node.inputs])
    if len(args) + len(kwargs) > 1 and any(t.has_mask for t in node.inputs):
        # Keras passes a layer its input's mask only when it is called with one tensor
        # argument: with more, Keras would run the layer unmasked where mlstm masks.
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r} is called with {', '.join(kwargs)} on a "
            "masked input; Keras 3.15 would ignore the mask inside the layer (see "
            "mlstm.interop.keras), so the two would not compute the same thing")
    return klayer(*args, **kwargs)


def to_keras(model: Model, compile: bool = True) -> Any:
    """A Keras model with the same graph, layer names, options and weights as ``model``.

    Parameters
    ----------
    model : mlstm.Model
    compile : bool, default True
        When ``model`` is compiled, compile the Keras model with the same losses, loss
        weights and optimizer configuration (fresh optimizer state). The model is built and
        compiled with Keras' ``floatx`` and dtype policy set to the model's dtype (restored
        after), so that Keras computes its losses in that dtype too.

    Returns
    -------
    keras.Model
        Typed ``Any``: Keras ships no type stubs.

    Notes
    -----
    Keras' ``predict`` and ``fit`` cast float inputs to ``keras.config.floatx()``: run a
    float64 model's ``predict`` with ``floatx`` float64 (or call the model directly),
    or its inputs are rounded to float32 first.

    Examples
    --------
    A round trip (needs the ``keras`` extra; ``tests/test_interop_examples.py`` runs it)::

        import mlstm
        from mlstm.interop.keras import from_keras, to_keras

        x = mlstm.Input(shape=(5, 3), name="x")
        y = mlstm.Dense(1, name="y")(mlstm.LSTM(4, name="lstm")(x))
        model = mlstm.Model(x, y)
        model.compile(optimizer="adam", loss="mse")
        kmodel = to_keras(model)          # a keras.Model, compiled with Keras' Adam and MSE
        back = from_keras(kmodel)         # an mlstm.Model again, same names and weights
        assert [l.name for l in back.layers] == [l.name for l in model.layers]
    """
    keras = import_keras()
    with keras_dtype(model.dtype):
        ktensors: dict[int, Any] = {}     # id(mlstm SymbolicTensor) -> Keras tensor
        klayers: dict[int, Any] = {}      # id(mlstm layer) -> Keras layer
        for node in model.nodes:
            layer = node.layer
            if layer.is_input:
                # the Input's shape, as its tensor carries it
                ktensors[id(node.outputs[0])] = keras.Input(shape=node.outputs[0].shape,
                                                            name=layer.name, dtype=layer.dtype)
                continue
            if id(layer) not in klayers:
                klayers[id(layer)] = keras_layer(layer)
            out = _call_keras_layer(klayers[id(layer)], layer, node, ktensors)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for t, kt in zip(node.outputs, outs):
                ktensors[id(t)] = kt
        kin = [ktensors[id(t)] for t in model.inputs]
        kout = [ktensors[id(t)] for t in model.outputs]
        kmodel = keras.Model(kin[0] if model._single_input else kin,
                             kout[0] if model._single_output else kout, name=model.name)
        copy_weights(model, kmodel)
        if compile and model.compiled:
            compile_keras_like(kmodel, model)
    return kmodel
