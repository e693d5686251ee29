"""Training: compile (``compile.py``), data (``data.py``), batches (``steps.py``), the loop
(``fit.py``) and what they return (``results.py``), assembled in :class:`Trainer`."""
from .results import History, LossResult
from .trainer import Trainer

__all__ = ["Trainer", "History", "LossResult"]
