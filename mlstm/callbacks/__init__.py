"""Callbacks for :meth:`mlstm.Model.fit`, with Keras' hooks and signatures.

One module per family: the contract and the dispatcher (``base.py``), the monitored value
shared by the next three (``monitor.py``), ``EarlyStopping`` (``early_stopping.py``),
``ReduceLROnPlateau`` (``reduce_lr.py``), ``ModelCheckpoint`` (``checkpoint.py``),
``CSVLogger`` (``csv_logger.py``), ``LambdaCallback`` and ``TerminateOnNaN``
(``lambda_callback.py``) and ``History`` (``history.py``). See :mod:`mlstm.callbacks.base`
for the hooks; docs/from_keras.md for what differs from Keras.
"""
from .base import HOOKS, KERAS_HOOKS, MLSTM_HOOKS, Callback, CallbackList, check_callbacks
from .checkpoint import ModelCheckpoint, checkpoint_callbacks, training_state
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lambda_callback import LambdaCallback, TerminateOnNaN
from .monitor import MonitorCallback
from .reduce_lr import ReduceLROnPlateau

__all__ = ["Callback", "CallbackList", "check_callbacks", "HOOKS", "KERAS_HOOKS",
           "MLSTM_HOOKS", "ModelCheckpoint", "training_state", "checkpoint_callbacks",
           "CSVLogger", "EarlyStopping", "History", "LambdaCallback", "TerminateOnNaN",
           "MonitorCallback", "ReduceLROnPlateau"]
