"""Human words for one entry of a parameter or input array, and the one place where
mlstm.gradcheck and mlstm.testing ask what kind of layer a layer is.

>>> gate_block(5, units=2)
('c', 1)
"""
from __future__ import annotations

from ..inspect.gradients import GATES  # Keras' gate block order: i, f, c, o
from ..layers import LSTM, Activation, Dense, Masking

__all__ = ["GATES", "gate_block", "describe_entry"]


def _layer_kind(layer):
    """``"lstm"``, ``"dense"``, ``"activation"``, ``"masking"`` or None (any other layer).

    The only isinstance checks on concrete layer classes in mlstm.gradcheck and
    mlstm.testing are here, so that a layer hook (a layer saying what its entries are)
    can replace this function in one place.
    """
    for kind, cls in (("lstm", LSTM), ("dense", Dense), ("activation", Activation),
                      ("masking", Masking)):
        if isinstance(layer, cls):
            return kind
    return None


def gate_block(column, units):
    """Gate block of a column of an LSTM kernel, recurrent kernel or bias.

    >>> gate_block(5, units=2)
    ('c', 1)

    Returns
    -------
    (gate, unit) : (str, int)
        ``gate`` in ``GATES`` (Keras order i, f, c, o), ``unit`` in [0, H).
    """
    return GATES[column // units], column % units


def describe_entry(model, name, index):
    """Human words for one entry of a parameter (``"layer/weight"``) or ``"input:<name>"``
    array: the gate block, unit and row for LSTM weights, the output unit for Dense
    weights, the sample, time step and feature for a sequence input."""
    if index is None:
        return ""
    index = tuple(int(i) for i in index)
    where = f"[{', '.join(map(str, index))}]"
    if name.startswith("input:"):
        if len(index) == 3:
            return f"{where}: sample {index[0]}, time step {index[1]}, feature {index[2]}"
        return f"{where}: sample {index[0]}, unit {index[-1]}"
    layer_name, _, weight = name.partition("/")
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        return where
    kind = _layer_kind(layer)
    if kind == "lstm":
        gate, unit = gate_block(index[-1], layer.units)
        H = layer.units
        k = GATES.index(gate)
        row = {"kernel": f", input feature {index[0]}",
               "recurrent_kernel": f", from h unit {index[0]}"}.get(weight, "")
        return (f"{where}: gate block {gate} (columns {k * H}:{(k + 1) * H} of {4 * H}), "
                f"unit {unit}{row}")
    if kind == "dense":
        return f"{where}: output unit {index[-1]}"
    return where
