"""The BLAS threading of the fast LSTM's recurrent loops (private).

The loops of :func:`~mlstm.ops.lstm.lstm_forward` and :func:`~mlstm.ops.lstm.lstm_backward`
make one small GEMM per time step, (N, H) @ (H, 4H), with elementwise work between them.
Whether BLAS should split those GEMMs over its threads is decided by
:func:`mlstm.parallel.recurrent_loop_blas` (the rule and its measurements are there). The
ops (level 0) may not import :mod:`mlstm.parallel` (level 1), so parallel installs its rule
here when it is imported (:func:`install`), which ``import mlstm`` always does. Without a
rule the loops run with whatever BLAS threading the caller has set.

The whole-sequence GEMMs (the input projection, the weight gradients) are outside the
loops and keep the caller's threading.
"""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

__all__ = ["install", "loop_blas"]

_rule: Optional[Callable[[int, int], ContextManager]] = None


def install(rule: Optional[Callable[[int, int], ContextManager]]) -> None:
    """Use ``rule(N, H)``, a context manager factory, around every recurrent loop (None:
    no rule)."""
    global _rule
    _rule = rule


def loop_blas(N: int, H: int) -> ContextManager:
    """The context one recurrent loop of batch N and H units runs in."""
    return contextlib.nullcontext() if _rule is None else _rule(N, H)
