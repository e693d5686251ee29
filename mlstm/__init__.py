"""mlstm: a transparent, pure-NumPy multi-input, multi-output LSTM, cross-checked against Keras.

>>> import mlstm
>>> x = mlstm.Input(shape=(4, 3), name="x")
>>> y = mlstm.Dense(1, name="y")(mlstm.LSTM(2, name="lstm")(x))
>>> model = mlstm.Model(x, y)
>>> [w.shape for w in model.get_layer("lstm").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from . import losses, metrics, optimizers
from .gradcheck import gradcheck
from .initializers import set_random_seed
from .layers import (LSTM, Activation, Concatenate, Dense, Input, Masking, Reshape,
                     concatenate)
from .model import Model

__version__ = "0.1.0"

__all__ = ["Input", "LSTM", "Dense", "Activation", "Concatenate", "concatenate", "Reshape",
           "Masking", "Model", "losses", "metrics", "optimizers", "gradcheck",
           "set_random_seed", "__version__"]
