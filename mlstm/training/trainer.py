"""compile / fit / evaluate / predict / train_on_batch / gradients, with Keras' conventions.

Mixed into :class:`mlstm.Model`. History keys follow Keras 3: ``loss`` (weighted total),
``<output>_loss`` (unweighted, only for several outputs), ``<output>_<metric>``
(``<metric>`` for one output), and the same with ``val_`` for validation data. Epoch values
are means over the epoch's batches weighted by batch size (losses) or over all samples
(metrics), as Keras computes them (:mod:`mlstm.training.epoch`).

Modules: ``compile.py``, ``data.py`` (x and y), ``weights.py`` (sample and class weights,
missing labels), ``steps.py`` (the loss and one step), ``inference.py`` (predict,
evaluate), ``fit.py`` (the loop), ``arguments.py`` (Keras' arguments), ``epoch.py`` (epoch
means), ``progress.py`` (the progress bar), ``results.py``.
"""
from __future__ import annotations

from .compile import CompileMixin
from .data import DataMixin
from .fit import FitMixin
from .inference import InferenceMixin
from .steps import StepsMixin

__all__ = ["Trainer"]


class Trainer(CompileMixin, DataMixin, StepsMixin, InferenceMixin, FitMixin):
    """Training plumbing for :class:`mlstm.Model`."""

    def __init__(self) -> None:
        self.compiled = False
        self.optimizer = None
        self.stop_training = False
        self.training_state = None   # fit kwargs that resume, set by loading a checkpoint
