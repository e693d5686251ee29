"""Pure array functions: ``forward(...) -> (out, cache)``, ``backward(d_out, cache) -> grads``.

Nothing here knows about layers or models; everything imports only NumPy and SciPy.
"""
from .activations import ACTIVATIONS, activate, derivative_from_output, get_activation
from .dense import dense_backward, dense_forward
from .lstm import lstm_backward, lstm_forward
from .lstm_reference import (lstm_backward_reference, lstm_forward_reference, lstm_step,
                             lstm_step_backward, lstm_step_forward, lstm_step_gate_gradients)
from .merge import concatenate_backward, concatenate_forward, reshape_backward, reshape_forward

__all__ = ["ACTIVATIONS", "activate", "derivative_from_output", "get_activation",
           "dense_forward", "dense_backward", "lstm_forward", "lstm_backward", "lstm_step",
           "lstm_step_forward", "lstm_step_backward", "lstm_step_gate_gradients",
           "lstm_forward_reference", "lstm_backward_reference",
           "concatenate_forward", "concatenate_backward", "reshape_forward",
           "reshape_backward"]
