"""mlstm: a transparent, pure-NumPy multi-input, multi-output LSTM, cross-checked against Keras.

>>> import mlstm
>>> x = mlstm.Input(shape=(4, 3), name="x")
>>> y = mlstm.Dense(1, name="y")(mlstm.LSTM(2, name="lstm")(x))
>>> model = mlstm.Model(x, y)
>>> [w.shape for w in model.get_layer("lstm").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from . import activations, callbacks, losses, metrics, optimizers, registry, schedules
from . import model as _model_module
from .gradcheck import gradcheck
from .initializers import set_random_seed
from .layers import (LSTM, Activation, Concatenate, Dense, Input, Layer, Masking, Reshape,
                     concatenate)
from .losses import Loss
from .model import Model
from .optimizers import Optimizer
from .parallel import get_num_threads, set_num_threads
from .registry import (register_activation, register_layer, register_loss, register_metric,
                       register_optimizer)

__version__ = "0.1.0"


def load_model(path, compile=True, custom_objects=None):
    """Load a model saved with ``model.save(path)`` (see :func:`mlstm.io.load_model`)."""
    from .io import load_model as _load_model
    return _load_model(path, compile=compile, custom_objects=custom_objects)


def load_keras(path):
    """Load a ``.keras`` file as an mlstm Model (see :mod:`mlstm.interop.keras`)."""
    from .interop.keras import load_keras as _load_keras
    return _load_keras(path)


def _save_keras(model, path):
    """``model.save("m.keras")``: a Keras file through :func:`mlstm.interop.keras.to_keras`."""
    from .interop.keras import to_keras
    to_keras(model).save(path)


_model_module.SAVE_FORMATS[".keras"] = _save_keras


def diagnose(model, x, y, **kwargs):
    """Why is this model not learning? See :func:`mlstm.diagnostics.diagnose`."""
    from .diagnostics import diagnose as _diagnose
    return _diagnose(model, x, y, **kwargs)

__all__ = ["Input", "LSTM", "Dense", "Activation", "Concatenate", "concatenate", "Reshape",
           "Masking", "Model", "Layer", "Loss", "Optimizer", "register_layer", "register_loss",
           "register_optimizer", "register_activation", "register_metric", "registry",
           "activations", "losses", "metrics", "optimizers", "gradcheck",
           "set_random_seed", "load_model", "load_keras", "diagnose", "get_num_threads",
           "set_num_threads", "__version__", "callbacks", "schedules"]
