"""mlstm: a transparent, pure-NumPy multi-input, multi-output LSTM, cross-checked against Keras.

>>> import mlstm
>>> x = mlstm.Input(shape=(4, 3), name="x")
>>> y = mlstm.Dense(1, name="y")(mlstm.LSTM(2, name="lstm")(x))
>>> model = mlstm.Model(x, y)
>>> [w.shape for w in model.get_layer("lstm").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from . import activations, callbacks, losses, metrics, optimizers, registry, schedules
from .diagnostics import diagnose
from .gradcheck import gradcheck
from .initializers import set_random_seed
from .interop.keras import load_keras
from .io import load_model
from .layers import (LSTM, Activation, BatchNormalization, Bidirectional, Concatenate, Dense,
                     Dropout, Embedding, Input, Layer, Masking, RepeatVector, Reshape,
                     SpatialDropout1D, TimeDistributed, concatenate)
from .losses import Loss
from .model import Model
from .optimizers import Optimizer
from .parallel import get_num_threads, set_num_threads
from .registry import (register_activation, register_layer, register_loss, register_metric,
                       register_optimizer)

from ._version import __version__


__all__ = ["Input", "LSTM", "Dense", "Embedding", "Activation", "Concatenate", "concatenate",
           "Reshape", "Masking", "RepeatVector", "Dropout", "SpatialDropout1D",
           "TimeDistributed", "Bidirectional", "BatchNormalization", "Model", "Layer", "Loss", "Optimizer", "register_layer",
           "register_loss", "register_optimizer", "register_activation", "register_metric",
           "registry",
           "activations", "losses", "metrics", "optimizers", "gradcheck",
           "set_random_seed", "load_model", "load_keras", "diagnose", "get_num_threads",
           "set_num_threads", "__version__", "callbacks", "schedules"]
