"""How a Keras layer config maps onto an mlstm layer: :class:`KerasOptions`.

Each layer class states it (``Layer.keras_options``); :mod:`mlstm.interop` reads it. It lives
apart from :mod:`mlstm.layers.base`, which re-exports it, to keep that module small.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["KerasOptions"]


class KerasOptions:
    """How a Keras layer config maps onto an mlstm layer (used by :mod:`mlstm.interop`).

    Parameters
    ----------
    copied : tuple of str
        Config options passed to the mlstm constructor unchanged.
    fixed : dict
        Options accepted only at the value shown (anything else is refused, naming it).
    initializers : tuple of str
        Initializer options (mapped to mlstm's initializer names).
    ignored : tuple of str
        Options that change no number mlstm computes (LSTM: ``unroll``, the dropout
        ``seed``), accepted at any value. ``name``, ``trainable`` and ``dtype`` are always
        carried over; any other option is refused, so that an option added by a later Keras
        cannot slip through unnoticed.
    wrapped : dict
        Wrappers: constructor option -> the attribute (same name on the Keras and the mlstm
        class) holding the wrapped layer, which is converted like any other.
    wrapped_ignored : tuple of str
        Options of the wrapped layers that the wrapper sets itself, accepted at any value.
    dropout_rates : tuple of str
        Dropout rates among ``copied``: the cross-check sets them to 0 on the Keras side.
    reasons : dict
        Why a ``fixed`` option takes no other value (option -> sentence), for the refusal.
    """

    def __init__(self, copied: Sequence[str] = (), fixed: Mapping[str, Any] | None = None,
                 initializers: Sequence[str] = (), ignored: Sequence[str] = (),
                 wrapped: Mapping[str, str] | None = None, wrapped_ignored: Sequence[str] = (),
                 dropout_rates: Sequence[str] = (), reasons: Mapping[str, str] | None = None
                 ) -> None:
        self.copied = tuple(copied)
        self.fixed = dict(fixed or {})
        self.initializers = tuple(initializers)
        self.ignored = tuple(ignored)
        self.wrapped = dict(wrapped or {})
        self.wrapped_ignored = tuple(wrapped_ignored)
        self.dropout_rates = tuple(dropout_rates)
        self.reasons = dict(reasons or {})

    def __repr__(self) -> str:
        return (f"KerasOptions(copied={self.copied}, fixed={self.fixed}, "
                f"initializers={self.initializers}, ignored={self.ignored}, "
                f"wrapped={self.wrapped}, wrapped_ignored={self.wrapped_ignored}, "
                f"dropout_rates={self.dropout_rates})")
