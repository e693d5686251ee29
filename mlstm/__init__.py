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
from .parallel import get_num_threads, set_num_threads

__version__ = "0.1.0"


def load_model(path, compile=True, custom_objects=None):
    """Load a model saved with ``model.save(path)`` (see :func:`mlstm.io.load_model`)."""
    from .io import load_model as _load_model
    return _load_model(path, compile=compile, custom_objects=custom_objects)


def load_keras(path):
    """Load a ``.keras`` file as an mlstm Model (see :mod:`mlstm.interop.keras`)."""
    from .interop.keras import load_keras as _load_keras
    return _load_keras(path)


def diagnose(model, x, y, **kwargs):
    """Why is this model not learning? See :func:`mlstm.inspect.diagnose`."""
    from .inspect import diagnose as _diagnose
    return _diagnose(model, x, y, **kwargs)

__all__ = ["Input", "LSTM", "Dense", "Activation", "Concatenate", "concatenate", "Reshape",
           "Masking", "Model", "losses", "metrics", "optimizers", "gradcheck",
           "set_random_seed", "load_model", "load_keras", "diagnose", "get_num_threads",
           "set_num_threads", "__version__"]
