"""Layers: one registered class per file; the contract is in :mod:`mlstm.layers.base`.

==============  =====================  ======================================================
base.py                SymbolicTensor, Node, Layer (the contract), KerasOptions
input.py               InputLayer, Input
lstm.py                LSTM
dense.py               Dense
embedding.py           Embedding (integer token ids)
activation.py          Activation
merge.py               Concatenate, concatenate
reshape.py             Reshape
masking.py             Masking
repeat_vector.py       RepeatVector
dropout.py             Dropout, SpatialDropout1D
batch_normalization.py BatchNormalization (moving statistics: ``Layer.state``)
wrapper.py             Wrapper: what the wrappers share (not a layer itself)
time_distributed.py    TimeDistributed
bidirectional.py       Bidirectional
=====================  ======================================================

Every class is registered in :data:`mlstm.registry.LAYERS` under its class name; configs,
checkpoints and the Keras interop find layers there.
"""
from ..registry import LAYERS, register_layer
from .activation import Activation
from .batch_normalization import BatchNormalization
from .bidirectional import Bidirectional
from .base import KerasOptions, Layer, Node, SymbolicTensor, format_shape
from .merge import Concatenate, concatenate
from .dense import Dense
from .dropout import Dropout, SpatialDropout1D
from .embedding import Embedding
from .input import Input, InputLayer
from .lstm import LSTM
from .masking import Masking
from .repeat_vector import RepeatVector
from .reshape import Reshape
from .time_distributed import TimeDistributed

__all__ = ["SymbolicTensor", "Node", "Layer", "KerasOptions", "InputLayer", "Input", "LSTM",
           "Dense", "Embedding", "Concatenate", "concatenate", "Reshape", "Masking", "Activation",
           "RepeatVector", "Dropout", "SpatialDropout1D", "TimeDistributed", "Bidirectional",
           "BatchNormalization", "LAYERS", "register_layer", "format_shape"]
