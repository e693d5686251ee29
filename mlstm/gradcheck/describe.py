"""Human words for one entry of a parameter or input array (the layer describes its own
weights: ``Layer.describe_weight_entry``).

>>> gate_block(5, units=2)
('c', 1)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..layers.lstm import GATES, gate_block  # Keras' gate block order: i, f, c, o

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["GATES", "gate_block", "describe_entry"]


def describe_entry(model: Model, name: str, index: Sequence[int] | None) -> str:
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
    words = layer.describe_weight_entry(weight, index)
    return f"{where}: {words}" if words else where
