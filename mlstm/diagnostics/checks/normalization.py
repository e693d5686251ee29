"""Findings on layers that normalize with the statistics of the batch (BatchNormalization)
trained on batches too small for them.

A BatchNormalization layer in training normalizes each feature with the mean and variance
of the values the batch holds for it: N for (N, D) input, the N·T steps (the valid ones
under a mask) for (N, T, D). Measured in Keras 3.15.1 and mlstm alike, on (1, D) input:
the output is ``beta`` for every input (x - mean is 0), the gradient of ``gamma`` and of
every layer before it is exactly 0, and the batch variance is 0, so ``moving_variance``
shrinks by ``momentum`` at each such step (at inference the layer divides by
``sqrt(moving_variance + epsilon)``). On two values each feature becomes
``±sqrt(v / (v + epsilon))``, about ±1: only which sample is larger survives. On a few,
the batch mean is off by about ``1 / sqrt(count)`` of the feature's spread, differently
on every batch, and differently from the moving statistics inference uses.

The counts come from the layer's hook ``Layer.batch_statistics_count`` on the diagnosis'
batch, scaled to every batch size of the training run (:func:`run_batch_sizes`: ``fit``
cuts each epoch into batches of ``batch_size`` and a last one of ``N mod batch_size``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..findings import Finding
from ..remedies import Remedy

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["check_batchnorm_small_batch", "even_batch_size", "KERAS_BATCH_SIZE"]

#: Keras' default batch size, what the fix suggests for batches that are all too small.
KERAS_BATCH_SIZE = 32


def even_batch_size(N: int, batch_size: int, least: int) -> int:
    """A batch size near ``batch_size`` whose batches, the last included, all hold at least
    ``least`` samples: ``batch_size`` itself when it does, else ``N`` cut into the same
    number of batches, evenly; at least ``least`` (at most ``N``)."""
    batch_size = max(batch_size, min(least, N))
    last = N - (math.ceil(N / batch_size) - 1) * batch_size
    if last >= least or last == batch_size:
        return batch_size
    return min(N, max(least, math.ceil(N / math.ceil(N / batch_size))))


def check_batchnorm_small_batch(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    assert r.static is not None                     # a check on the batch's measurements
    out = []
    least = int(r.thresholds["batchnorm_min_values"])
    run = r.run or {}
    sizes = run.get("batch_sizes") or {}
    N = run.get("samples")
    for layer, st in r.static["batch_statistics"].items():
        per_sample = st["per_sample"]
        counts = {st["batch"]: st["count"]}
        counts.update({b: int(round(per_sample * b)) for b in sizes})
        small = {b: c for b, c in counts.items() if c < least}
        if not small:
            continue
        worst_batch = min(small, key=small.__getitem__)
        worst = small[worst_batch]
        batch_size = max(sizes) if sizes else st["batch"]
        last_only = bool(sizes) and all(b != batch_size for b in small) and N is not None
        steps_small = sum(sizes.get(b, 0) for b in small)
        where = (f"the last batch of each epoch holds {worst_batch} sample"
                 f"{'s' if worst_batch != 1 else ''} ({N} = "
                 f"{N // batch_size} x {batch_size} + {N % batch_size}; {steps_small} of the "
                 f"run's {sum(sizes.values())} steps)" if last_only else
                 f"it trains on batches of {worst_batch} sample"
                 f"{'s' if worst_batch != 1 else ''}")
        seq = (f" ({per_sample:.3g} values per sample: its steps)" if per_sample != 1 else "")
        if worst == 1:
            what = ("x - mean is 0, so the layer outputs beta whatever its input, and no "
                    "gradient reaches gamma or any layer before it (Keras 3.15 computes the "
                    "same); the batch variance is 0, so moving_variance shrinks by momentum "
                    "at each such step, and inference divides by sqrt(moving_variance + "
                    "epsilon).")
        elif worst == 2:
            what = ("each normalized feature is ±sqrt(v / (v + epsilon)), about ±1: only "
                    "which of the two values is larger survives, and the moving statistics "
                    "inference uses come from such pairs.")
        else:
            what = (f"the batch mean is off by about 1/sqrt({worst}) = "
                    f"{1 / math.sqrt(worst):.2f} of each feature's spread, differently on "
                    "every batch and from the moving statistics inference uses.")
        moving = _moving_variance(r, layer, st)
        if last_only and N is not None:          # (last_only implies a known N)
            new_size = even_batch_size(N, batch_size, least)
        else:          # Keras' default batch size, or the whole data when it is smaller
            wanted = max(KERAS_BATCH_SIZE, math.ceil(least / per_sample))
            new_size = wanted if N is None else min(N, wanted)
        fix = (f"Train with batches whose statistics rest on at least {least} values: "
               + (f"batch_size={new_size}, which cuts the {N} samples into batches of "
                  f"{new_size} and a last one of {N - (math.ceil(N / new_size) - 1) * new_size}"
                  if N is not None and last_only else
                  f"batch_size={new_size}" + (" (Keras' default)" if new_size == KERAS_BATCH_SIZE
                                              else "")
                  + f"; at the least {math.ceil(least / per_sample)}")
               + ". Or normalize without the batch: mlstm has no LayerNormalization (Keras' "
               "keras.layers.LayerNormalization normalizes each sample over its own features); "
               "remove the BatchNormalization layer, or freeze it (trainable=False: it then "
               "uses its moving statistics in training too).")
        remedy = (Remedy(f"batch-size:{new_size}", f"batch_size={new_size}", batch_size=new_size)
                  if new_size != batch_size else None)
        out.append(Finding(
            "batchnorm_small_batch", "error" if worst == 1 else "warning",
            f"BatchNormalization {layer!r} normalizes over {worst} value"
            f"{'s' if worst != 1 else ''} per feature",
            f"{layer!r} normalizes each feature with the mean and variance of the batch, "
            f"here from {worst} value{'s' if worst != 1 else ''} per feature{seq}: {where}. "
            f"At {worst}, {what}{moving}",
            fix, {"layer": layer, "count": worst, "batch": worst_batch,
                  "per_sample": per_sample, "last_batch_only": last_only,
                  "steps": steps_small, "least": least, "suggested_batch_size": new_size},
            remedy=remedy,
            why_not_tried=None if remedy else "the batch size is already the one advised"))
    return out


def _moving_variance(r: DiagnosisReport, layer: str, st: dict[str, Any]) -> str:
    """Words on how the moving variance moved over the run, or ""."""
    after = (((r.run or {}).get("static") or {}).get("batch_statistics") or {}).get(layer)
    before = st.get("moving_variance")
    if not after or before is None or after.get("moving_variance") is None:
        return ""
    return (f" Median moving_variance: {before:.3g} at the current weights, "
            f"{after['moving_variance']:.3g} after {r.summary.get('steps')} steps.")
