"""Pictures of models, drawn with matplotlib alone (the ``plot`` extra; no graphviz).

:func:`plot_model` draws any model's graph: every layer call with its class, options,
output shape and parameter count, layered from the inputs down to the outputs, which show
their losses and loss weights once the model is compiled. ``import mlstm.plotting`` does
not import matplotlib; drawing does.
"""
from .model_plot import SUPPORTED_SUFFIXES, plot_model

__all__ = ["plot_model", "SUPPORTED_SUFFIXES"]
