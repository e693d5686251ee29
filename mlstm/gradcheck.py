"""Finite-difference gradient checks, in float64.

For each parameter entry θ_j (and each input entry), the numerical derivative of the
total loss uses the five-point stencil::

    ∂L/∂θ_j ≈ (-L(θ+2h e_j) + 8 L(θ+h e_j) - 8 L(θ-h e_j) + L(θ-2h e_j)) / (12 h)

whose truncation error is O(h^4), so h = 1e-4 leaves errors near 1e-12 in float64.

The error reported per parameter is ``max_j |a_j - n_j| / max_j max(|a_j|, |n_j|)``: the
worst entry's error relative to that parameter's largest gradient entry. A sign error on any
entry that is not negligible shows as an error near 1; entries far below the largest one
cannot produce false alarms from rounding.

``method="projection"`` checks one random direction v per parameter instead (Karpathy's
trick): ``<∇L, v>`` against ``(L(θ+hv) - L(θ-hv)) / 2h`` (five-point as above), which
costs four evaluations per parameter however large it is.

Input entries at time steps whose mask would change under the perturbation (a Masking
layer sees ``mask_value`` exactly there) have no derivative; they are skipped and counted.
Integer inputs (token ids) are not differentiable and not perturbed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "GradcheckReport", "numerical_gradient", "Float64Problem"]


class GradcheckReport:
    """Per-parameter (and per-input) errors of a gradient check.

    Attributes
    ----------
    rows : dict name -> dict
        ``max_rel_error``, ``max_abs_error``, ``checked`` (entries compared), ``skipped``.
    """

    def __init__(self, rows, h, method):
        self.rows, self.h, self.method = rows, h, method

    @property
    def max_relative_error(self):
        """The worst relative error over every parameter and input."""
        return max((r["max_rel_error"] for r in self.rows.values()), default=0.0)

    def ok(self, tol=1e-6):
        """True when every relative error is below ``tol``."""
        return self.max_relative_error < tol

    def worst(self):
        """``(name, row)`` with the largest relative error."""
        return max(self.rows.items(), key=lambda kv: kv[1]["max_rel_error"])

    def to_dict(self):
        return {"h": self.h, "method": self.method, "rows": self.rows,
                "max_relative_error": self.max_relative_error}

    def __str__(self):
        width = max([len(n) for n in self.rows] + [9])
        lines = [f"gradient check ({self.method}, five-point, h={self.h:g}, float64)",
                 f"{'parameter':<{width}}  {'max rel err':>11}  {'max abs err':>11}  checked"]
        for name, r in self.rows.items():
            skipped = f" (+{r['skipped']} skipped)" if r["skipped"] else ""
            lines.append(f"{name:<{width}}  {r['max_rel_error']:11.2e}  "
                         f"{r['max_abs_error']:11.2e}  {r['checked']}{skipped}")
        return "\n".join(lines)

    __repr__ = __str__


class Float64Problem:
    """A compiled model in float64 (a clone when it is float32) with its checked data.

    ``loss()`` is the total loss at the current parameter and input values (both may be
    perturbed in place); ``analytic()`` the backward pass: ``(tape, result, grads,
    d_inputs)``. Shared by :func:`gradcheck` and ``mlstm.testing.gradcheck_caveats``.
    """

    def __init__(self, model, x, y):
        model._require_compiled("gradcheck")
        self.model = model if model.dtype == "float64" else model.clone(dtype="float64")
        # token ids (integer inputs) stay integers: they are not perturbed
        self.xs = [a.copy() if a.dtype.kind == "i" else np.array(a, dtype=np.float64)
                   for a in self.model._inputs(x)]
        self.ys = self.model._targets(y, self.xs[0].shape[0])

    def loss(self):
        tape = self.model.forward(self.xs, training=True)
        return self.model.loss_and_output_grads(tape, self.ys).total

    def analytic(self):
        tape = self.model.forward(self.xs, training=True)
        result = self.model.loss_and_output_grads(tape, self.ys)
        grads, d_inputs = self.model.backward(tape, result.d_outputs, result.d_logits,
                                              input_grads=True)
        return tape, result, grads, d_inputs


def _stencil(evaluate, h):
    # Differences first: exact (zero) when the loss does not move, and no rounding of 7·L.
    return (8 * (evaluate(h) - evaluate(-h)) - (evaluate(2 * h) - evaluate(-2 * h))) / (12 * h)


def numerical_gradient(f, array, h=1e-4, entries=None):
    """Five-point numerical gradient of scalar ``f()`` with respect to ``array`` (in place).

    ``array`` is perturbed in place and restored. ``entries`` limits the flat indices.
    """
    flat = array.reshape(-1)
    grad = np.zeros(flat.size)
    for j in (range(flat.size) if entries is None else entries):
        original = flat[j]

        def evaluate(delta, j=j, original=original):
            flat[j] = original + delta
            return f()

        grad[j] = _stencil(evaluate, h)
        flat[j] = original
    return grad.reshape(array.shape)


def _row(analytic, numeric, checked, skipped=0):
    scale = max(float(np.max(np.abs(analytic), initial=0.0)),
                float(np.max(np.abs(numeric), initial=0.0)))
    abs_err = float(np.max(np.abs(analytic - numeric), initial=0.0))
    rel = abs_err / scale if scale > 0 else abs_err
    return {"max_rel_error": rel, "max_abs_error": abs_err, "checked": int(checked),
            "skipped": int(skipped)}


def gradcheck(model, x, y, h=1e-4, inputs=True, method="entries", max_entries=None, seed=0):
    """Compare ``model``'s backward pass with finite differences, in float64.

    Parameters
    ----------
    model : Model
        Compiled. A float32 model is cloned to float64 first (same weights, same losses).
    x, y : inputs and targets, as for ``fit``.
    h : float
        Step of the five-point stencil.
    inputs : bool
        Also check dL/d(input) for every model input.
    method : {"entries", "projection"}
        Every entry (or a random sample of ``max_entries`` per array), or one random
        direction per array.
    max_entries : int, optional
        With ``"entries"``, check at most this many entries per array (drawn with ``seed``).
    seed : int

    Returns
    -------
    GradcheckReport
    """
    if method not in ("entries", "projection"):
        raise ValueError(f"method must be 'entries' or 'projection', got {method!r}")
    problem = Float64Problem(model, x, y)
    m64, xs, loss = problem.model, problem.xs, problem.loss
    rng = np.random.default_rng(seed)

    tape, result, grads, d_inputs = problem.analytic()
    base_masks = [None if m is None else m.copy() for m in tape.masks.values()]

    def masks_unchanged():
        t = m64.forward(xs, training=True)
        return all((a is None and b is None) or (a is not None and b is not None
                                                  and np.array_equal(a, b))
                   for a, b in zip(base_masks, t.masks.values()))

    targets = [(name, p, grads[name], False) for name, p in m64.params.items()]
    if inputs:
        targets += [(f"input:{name}", a, g, True)
                    for name, a, g in zip(m64.input_names, xs, d_inputs) if g is not None]
    rows = {}
    for name, array, analytic, is_input in targets:
        if method == "projection":
            v = rng.standard_normal(array.shape)
            original = array.copy()

            def evaluate(delta, array=array, original=original, v=v):
                np.copyto(array, original + delta * v)
                return loss()

            numeric = _stencil(evaluate, h)
            np.copyto(array, original)
            rows[name] = _row(np.array([np.sum(analytic * v)]), np.array([numeric]), 1)
            continue
        entries = np.arange(array.size)
        if max_entries is not None and array.size > max_entries:
            entries = np.sort(rng.choice(array.size, size=max_entries, replace=False))
        skipped = 0
        if is_input:
            keep = []
            flat = array.reshape(-1)
            for j in entries:
                original = flat[j]
                ok = True
                for delta in (h, -h, 2 * h, -2 * h):
                    flat[j] = original + delta
                    if not masks_unchanged():
                        ok = False
                        break
                flat[j] = original
                if ok:
                    keep.append(j)
                else:
                    skipped += 1
            entries = np.array(keep, dtype=int)
        numeric = numerical_gradient(loss, array, h=h, entries=entries)
        a = analytic.reshape(-1)[entries]
        n = numeric.reshape(-1)[entries]
        rows[name] = _row(a, n, len(entries), skipped)
        # Where the worst entry sits, so that a failure can name the gate block / time step.
        rows[name]["worst_index"] = (
            [int(i) for i in np.unravel_index(int(entries[np.argmax(np.abs(a - n))]),
                                              array.shape)] if len(entries) else None)
    return GradcheckReport(rows, h, method)
