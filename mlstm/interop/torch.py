"""PyTorch interop for single-layer LSTMs: ``lstm_from_torch`` and ``lstm_to_torch``.

PyTorch (``torch==2.13.0``, the ``torch`` extra) is imported only inside these functions.

``torch.nn.LSTM`` computes the same cell as Keras with the gate blocks in the same order
(i, f, g = c~, o), its weights transposed and two biases::

    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh

so ``kernel = W_ih^T`` (D, 4H), ``recurrent_kernel = W_hh^T`` (H, 4H) and
``bias = b_ih + b_hh`` (4H,). Going back, the whole bias goes to ``b_ih`` and ``b_hh`` is
zero (any split gives the same numbers). The LSTM returned by :func:`lstm_to_torch` is
``batch_first=True``, like mlstm's (N, T, D) inputs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import Array

if TYPE_CHECKING:
    from ..layers import LSTM

__all__ = ["lstm_from_torch", "lstm_to_torch"]


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("mlstm.interop.torch needs PyTorch: pip install 'mlstm[torch]' "
                          "(torch==2.13.0)") from exc
    return torch


def _numpy(tensor: Any) -> Array:
    return tensor.detach().cpu().numpy()


def _computes_keras_lstm(cls: type) -> bool:
    """Whether the layer class itself declares Keras' LSTM as its counterpart (the cell
    torch.nn.LSTM computes too); a subclass that does not say so computes something else."""
    return vars(cls).get("keras_name") == "LSTM"


def _lstm_class() -> type[LSTM]:
    """The registered mlstm layer class that computes Keras' (and torch's) LSTM."""
    from ..registry import LAYERS

    matches = [cls for cls in LAYERS.by_attribute("keras_name", "LSTM")
               if _computes_keras_lstm(cls)]
    if len(matches) != 1:
        raise RuntimeError(f"expected one registered layer computing Keras' LSTM, found "
                           f"{[cls.__qualname__ for cls in matches]}")
    return matches[0]


def lstm_from_torch(module: Any, name: str | None = None, return_sequences: bool = True,
                    return_state: bool = False) -> LSTM:
    """An mlstm :class:`~mlstm.LSTM` with the weights of a single-layer ``torch.nn.LSTM``.

    Parameters
    ----------
    module : torch.nn.LSTM
        One layer, unidirectional, no projection (``proj_size=0``); float32 or float64.
        ``batch_first`` does not matter (mlstm is always batch first).
    name : str, optional
    return_sequences, return_state : bool
        As for :class:`mlstm.LSTM`. PyTorch returns the whole sequence and the final
        ``(h, c)``; the defaults give the sequence.

    Returns
    -------
    mlstm.LSTM
        Built for inputs of D = ``module.input_size`` features, in the module's dtype; call
        it on an :func:`mlstm.Input` of shape (T, D) to use it in a model.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.LSTM):
        raise TypeError(f"lstm_from_torch expects a torch.nn.LSTM, got {type(module).__name__}")
    label = f"torch.nn.LSTM{' ' + repr(name) if name else ''}"
    for option, value, allowed in (("num_layers", module.num_layers, 1),
                                   ("bidirectional", module.bidirectional, False),
                                   ("proj_size", module.proj_size, 0)):
        if value != allowed:
            raise ValueError(f"{label}: option {option}={value!r} is not supported (only "
                             f"{allowed!r}: stack or mirror mlstm LSTM layers instead)")
    weight_ih = _numpy(module.weight_ih_l0)
    dtype = weight_ih.dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{label}: dtype {dtype} is not supported (float32 or float64)")
    layer = _lstm_class()(module.hidden_size, use_bias=module.bias, return_sequences=return_sequences,
                 return_state=return_state, name=name, dtype=dtype.name)
    layer.build([(None, module.input_size)])
    layer.built = True
    weights = [weight_ih.T, _numpy(module.weight_hh_l0).T]
    if module.bias:
        weights.append(_numpy(module.bias_ih_l0) + _numpy(module.bias_hh_l0))
    layer.set_weights(weights)
    return layer


def lstm_to_torch(layer: LSTM) -> Any:
    """A ``torch.nn.LSTM`` (``batch_first=True``) with the weights of an mlstm LSTM layer.

    Parameters
    ----------
    layer : mlstm.LSTM
        Built, with ``activation="tanh"``, ``recurrent_activation="sigmoid"`` and
        ``go_backwards=False`` (what ``nn.LSTM`` computes).

    Returns
    -------
    torch.nn.LSTM
        In the layer's dtype; ``bias_ih`` holds the whole bias, ``bias_hh`` zeros.
    """
    torch = _import_torch()
    if not _computes_keras_lstm(type(layer)):
        raise TypeError(f"lstm_to_torch expects an mlstm.LSTM, got {type(layer).__name__}")
    if not layer.built:
        raise ValueError(f"LSTM {layer.name!r} is not built: call it on an Input first")
    for option, value, allowed in (("activation", layer.activation, "tanh"),
                                   ("recurrent_activation", layer.recurrent_activation,
                                    "sigmoid"),
                                   ("go_backwards", layer.go_backwards, False)):
        if value != allowed:
            raise ValueError(f"LSTM {layer.name!r}: option {option}={value!r} has no "
                             f"torch.nn.LSTM equivalent (only {allowed!r})")
    kernel = layer.params["kernel"]
    dtype = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[kernel.dtype]
    module = torch.nn.LSTM(kernel.shape[0], layer.units, num_layers=1, bias=layer.use_bias,
                           batch_first=True, dtype=dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        module.weight_hh_l0.copy_(torch.from_numpy(
            np.ascontiguousarray(layer.params["recurrent_kernel"].T)))
        if layer.use_bias:
            module.bias_ih_l0.copy_(torch.from_numpy(layer.params["bias"].copy()))
            module.bias_hh_l0.zero_()
    return module
