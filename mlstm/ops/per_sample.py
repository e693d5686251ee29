"""Per-sample gradient norms of a weight used at several steps, without a loop over samples.

A weight W used at steps s = 1..S (an LSTM kernel at every time step, a Dense kernel at
every step of a sequence) gets the batch gradient ``dW = Σ_n Σ_s a[s, n] ⊗ b[s, n]``,
``a`` what W multiplies and ``b`` the gradient of the pre-activation. Sample n's term is
``G_n = Σ_s a[s, n] ⊗ b[s, n]``, and

    ||G_n||_F² = Σ_{s,r} (a[s,n]·a[r,n]) (b[s,n]·b[r,n])

(two S×S Gram matrices), which is cheaper than forming G_n when S² < A·B.
"""
from __future__ import annotations

import numpy as np

from .._typing import FloatArray

__all__ = ["per_sample_outer_norms"]


def per_sample_outer_norms(a: FloatArray, b: FloatArray, max_floats: int = 2 ** 22
                           ) -> FloatArray:
    """``||Σ_s a[s, n] ⊗ b[s, n]||_F`` for every sample n.

    Parameters
    ----------
    a : ndarray (S, N, A)
        What the weight multiplies (layer input, previous hidden state), per step s.
    b : ndarray (S, N, B)
        The gradient of the pre-activation, per step.
    max_floats : int
        Memory cap for the intermediate; samples are processed in blocks below it.

    Returns
    -------
    ndarray (N,)

    Examples
    --------
    >>> a = np.ones((2, 1, 3)); b = np.ones((2, 1, 4))
    >>> float(per_sample_outer_norms(a, b)[0]) == float(np.linalg.norm(2 * np.ones((3, 4))))
    True
    """
    S, N, A = a.shape
    B = b.shape[2]
    if S == 1:                               # ||a ⊗ b|| = |a| |b|
        return np.linalg.norm(a[0], axis=1) * np.linalg.norm(b[0], axis=1)
    per_sample = min(S * S, A * B)           # floats per sample of the cheaper route
    block = max(1, max_floats // per_sample)
    out = np.empty(N, dtype=np.result_type(a, b))
    for start in range(0, N, block):
        sl = slice(start, start + block)
        if S * S <= A * B:
            gram_a = np.einsum("snk,rnk->nsr", a[:, sl], a[:, sl])
            gram_b = np.einsum("snk,rnk->nsr", b[:, sl], b[:, sl])
            squared = np.einsum("nsr,nsr->n", gram_a, gram_b)
            out[sl] = np.sqrt(np.maximum(squared, 0))
        else:
            outer = np.einsum("sna,snb->nab", a[:, sl], b[:, sl])
            out[sl] = np.sqrt(np.einsum("nab,nab->n", outer, outer))
    return out
