"""The trainable model as the levels below :mod:`mlstm.model` see it (typing Protocols).

``mlstm.Model`` is ``Graph + Trainer`` (level 6). The modules under it that take the model
(``measure``, ``io``, ``plotting`` at level 4, ``training``'s mixins at level 5) may not
import it (imports go down only, even those for typing: tests/test_architecture.py), so
they name :class:`TrainableModel` instead: the members of :class:`mlstm.graph.Graph`, of
the trainer and of the model that they use, and the public methods of a model (what
:func:`mlstm.load_model`, which sits in ``io``, returns is typed as this). ``mlstm.Model``
satisfies it structurally (mypy checks that where a Model is passed as one, and checks each
declaration against the mixin that defines it); it has no behaviour. The training mixins
derive from it for mypy only (:class:`mlstm.training.host.TrainerHost` adds the members
they call on each other); at run time nothing subclasses it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import os

    import numpy as np

    from ._typing import Array, ArrayLike, BoolArray, DTypeLike, JSONDict
    from .graph import Tape
    from .layers.base import Layer, Node, SymbolicTensor
    from .losses.base import Loss
    from .ops.embedding import SparseRowsGradient
    from .optimizers.base import Optimizer

__all__ = ["TrainableModel", "LossSeeds", "RunRecord", "MetricFunction"]

#: A compiled metric: ``fn(y_true, y_pred)`` -> per-entry values.
MetricFunction = Callable[..., Any]


class LossSeeds(Protocol):
    """A batch's losses and the gradients that seed backward
    (:class:`mlstm.training.results.LossResult`)."""

    @property
    def total(self) -> float: ...

    @property
    def per_output(self) -> list[float | None]: ...

    @property
    def d_outputs(self) -> dict[int, Array]: ...

    @property
    def d_logits(self) -> dict[int, Array]: ...

    def for_output(self, k: int) -> tuple[dict[int, Array], dict[int, Array]]: ...


class RunRecord(Protocol):
    """What a fit leaves on ``model.history`` that resuming reads
    (:class:`mlstm.callbacks.History`)."""

    params: dict[str, Any]


class TrainableModel(Protocol):
    """What of ``mlstm.Model`` the levels below it use (see the module docstring)."""

    # ------------------------------------------------------------ the graph (mlstm.graph)
    name: str
    inputs: list[SymbolicTensor]
    outputs: list[SymbolicTensor]
    input_names: list[str]
    output_names: list[str]
    nodes: list[Node]
    layers: list[Layer]
    _single_output: bool

    @property
    def params(self) -> dict[str, Array]: ...

    @property
    def trainable_params(self) -> dict[str, Array]: ...

    @property
    def dtype(self) -> DTypeLike: ...

    def forward(self, xs: list[Array], training: bool = False,
                rng: np.random.Generator | None = None) -> Tape: ...

    def backward(self, tape: Tape, d_outputs: dict[int, Array] | None = None,
                 d_logits: dict[int, Array] | None = None, input_grads: bool = False,
                 extras: dict[str, Any] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None) -> Any: ...

    def output_logits(self, tape: Tape, k: int,
                      activation: str | None = None) -> Array | None: ...

    def get_weights(self) -> list[Array]: ...

    def set_weights(self, weights: Sequence[ArrayLike],
                    allow_nonfinite: bool = False) -> None: ...

    def count_params(self) -> int: ...

    def get_config(self) -> JSONDict: ...

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer: ...

    # ------------------------------------------------------------ the trainer (mlstm.training)
    compiled: bool
    optimizer: Optimizer | None
    stop_training: bool
    training_state: dict[str, Any] | None
    history: RunRecord
    _losses: list[Loss | None]
    _loss_weights: list[float]
    _metrics: list[list[tuple[MetricFunction, str]]]

    @property
    def metrics_names(self) -> list[str]: ...

    def compile(self, optimizer: Any = "adam", loss: Any = None,
                loss_weights: Sequence[float] | Mapping[str, float] | None = None,
                metrics: Any = None) -> None: ...

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None,
            epochs: int = 1, verbose: int | str = "auto", callbacks: Sequence[Any] | None = None,
            validation_split: float = 0.0, validation_data: Sequence[Any] | None = None,
            shuffle: bool = True, class_weight: Mapping[Any, Any] | None = None,
            sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int | Sequence[int] = 1, seed: int | None = None,
            trace: bool = False, checkpoint: Any = None,
            missing_targets: Literal["mask"] | None = None,
            **unknown: Any) -> RunRecord: ...

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = 0,
                callbacks: Sequence[Any] | None = None, **unknown: Any) -> Array | list[Array]: ...

    def predict_on_batch(self, x: Any) -> Array | list[Array]: ...

    def evaluate(self, x: Any, y: Any, batch_size: int | None = None, verbose: int | str = 0,
                 sample_weight: Any = None, callbacks: Sequence[Any] | None = None,
                 return_dict: bool = False, missing_targets: Literal["mask"] | None = None,
                 **unknown: Any) -> dict[str, float] | float | list[float]: ...

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                       class_weight: Mapping[Any, Any] | None = None, return_dict: bool = False,
                       **unknown: Any) -> dict[str, float] | float | list[float]: ...

    def gradients(self, x: Any, y: Any) -> dict[str, Array]: ...

    # ------------------------------------------------------------ the model (mlstm.model)
    def summary(self, print_fn: Callable[[str], object] = print) -> None: ...

    def save(self, path: str | os.PathLike[str]) -> None: ...

    def save_weights(self, path: str | os.PathLike[str]) -> None: ...

    def load_weights(self, path: str | os.PathLike[str]) -> None: ...

    # ------------------------------------------------------------ used across the levels
    def _require_compiled(self, what: str) -> None: ...

    def _inputs(self, x: Any) -> list[Array]: ...

    def _targets(self, y: Any, batch_size: int,
                 labelled: list[BoolArray | None] | None = None) -> list[Array]: ...

    def loss_and_output_grads(self, tape: Tape, ys: Sequence[Array],
                              weights: Sequence[Array | None] | None = None,
                              labelled: Sequence[BoolArray | None] | None = None,
                              ) -> LossSeeds: ...

    def loss_logits(self, tape: Tape, k: int) -> Array | None: ...

    def _logs(self, result_sums: tuple[float, Sequence[float]], batch_counts: float,
              metric_sums: Sequence[Sequence[float]], prefix: str = "") -> dict[str, float]: ...
