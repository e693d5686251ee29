"""The memory check at the entry points: one estimate per model, data shape and batch size.

``fit``, ``train_on_batch``, ``gradients``, ``evaluate``, ``predict`` and
``predict_on_batch`` call :func:`check_batch_memory` once their arrays are checked and
before the first batch: :func:`mlstm.io.memory.check_memory` refuses, with a ValueError
saying what dominates and how to go on, a batch whose estimated peak passes
:data:`mlstm.io.limits.MAX_BATCH_BYTES`. The answer is remembered per model for the
shapes, batch size, mode and limit, so ``train_on_batch`` in a loop pays a set lookup.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence, Tuple

from ..io import limits
from ..io.memory import check_memory

if TYPE_CHECKING:
    from ..model_protocol import TrainableModel

__all__ = ["check_batch_memory", "MAX_REMEMBERED"]

#: Checks remembered per model (data shapes, batch size, mode, limit) before starting afresh.
MAX_REMEMBERED = 256


def check_batch_memory(model: TrainableModel, shapes: Sequence[Tuple[int, ...]],
                       batch_size: int, mode: str, where: str,
                       samples: Optional[int] = None) -> None:
    """Refuse (ValueError) when a batch of ``batch_size`` rows of arrays of these ``shapes``
    (batch axis first) would need more than the limit; see the module docstring."""
    batch_size = min(int(batch_size), int(shapes[0][0]))
    key = (tuple(tuple(s[1:]) for s in shapes), batch_size, mode, samples,
           limits.MAX_BATCH_BYTES)
    passed = model.__dict__.setdefault("_memory_checked", set())
    if key in passed:
        return
    check_memory(model, shapes, batch_size, mode, where, samples=samples)
    if len(passed) >= MAX_REMEMBERED:      # sequences of ever new lengths: start afresh
        passed.clear()
    passed.add(key)
