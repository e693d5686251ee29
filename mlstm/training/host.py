"""What the training mixins call on each other: :class:`TrainerHost`, for typing only.

Each mixin of :class:`mlstm.training.Trainer` uses members that the graph or another mixin
defines (``fit`` calls ``_train_step``, ``predict`` calls ``forward``). For mypy, each mixin
derives from :class:`TrainerHost`, which declares them (an explicit subclass of a Protocol:
its declarations are checked against the mixin that defines each member); at run time the
mixins derive from ``object`` (``if TYPE_CHECKING`` in each), so nothing changes in
``mlstm.Model``'s method resolution order.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..model_protocol import TrainableModel

if TYPE_CHECKING:
    import numpy as np

    from .._typing import Array, BoolArray
    from ..callbacks.base import CallbackList
    from ..callbacks.history import History
    from ..graph import Tape
    from .progress import Progress
    from .results import LossResult
    from .weights import Arrays

__all__ = ["TrainerHost", "StepInfo"]

#: What one training step hands to the update hooks: tape, result, grads, updates, ...
StepInfo = dict[str, Any]


class TrainerHost(TrainableModel, Protocol):
    """The members the training mixins use across mixins (see the module docstring)."""

    history: History

    def _per_output(self, spec: Any, label: str, allow_missing: bool = False) -> list[Any]: ...

    def _arrays(self, x: Any, y: Any, sample_weight: Any = None,
                class_weight: Mapping[Any, Any] | None = None, missing: bool = False,
                label: str = "sample_weight") -> Arrays: ...

    def _batch_loss(self, tape: Tape, batch: Arrays) -> LossResult: ...

    def _metric_sums(self, tape: Tape, ys: list[Array],
                     labelled: Sequence[BoolArray | None] | None = None,
                     ) -> list[tuple[float, float]]: ...

    def _train_step(self, batch: Arrays, before_update: Callable[[StepInfo], None] | None = None,
                    rng: np.random.Generator | None = None,
                    ) -> tuple[dict[str, float], StepInfo]: ...

    def _evaluate_arrays(self, data: Arrays, batch_size: int, prefix: str = "",
                         hooks: CallbackList | None = None,
                         progress: Progress | None = None) -> dict[str, float]: ...
