"""mlstm: a transparent, pure-NumPy multi-input, multi-output LSTM, cross-checked against Keras.

>>> import mlstm
>>> x = mlstm.Input(shape=(4, 3), name="x")
>>> y = mlstm.Dense(1, name="y")(mlstm.LSTM(2, name="lstm")(x))
>>> model = mlstm.Model(x, y)
>>> [w.shape for w in model.get_layer("lstm").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from . import activations, losses, metrics, optimizers, registry
from .gradcheck import gradcheck
from .initializers import set_random_seed
from .layers import (LSTM, Activation, Concatenate, Dense, Embedding, Input, Layer, Masking,
                     Reshape, concatenate)
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


#: Names served from the modules above the core on first use (``mlstm.diagnose`` is the
#: real function, so ``help(mlstm.diagnose)`` shows its whole signature and options).
_LAZY = {"diagnose": ("mlstm.diagnostics", "diagnose"),
         "load_keras": ("mlstm.interop.keras", "load_keras")}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlstm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["Input", "LSTM", "Dense", "Embedding", "Activation", "Concatenate", "concatenate",
           "Reshape", "Masking", "Model", "Layer", "Loss", "Optimizer", "register_layer",
           "register_loss", "register_optimizer", "register_activation", "register_metric", "registry",
           "activations", "losses", "metrics", "optimizers", "gradcheck",
           "set_random_seed", "load_model", "load_keras", "diagnose", "get_num_threads",
           "set_num_threads", "__version__"]
