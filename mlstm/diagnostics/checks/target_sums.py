"""Class targets whose rows do not sum to 1 under categorical cross-entropy.

Categorical cross-entropy reads each target row as a distribution over the classes
(one-hot, or soft labels that sum to 1). Multi-hot rows (several classes per sample) with
a softmax and CCE are a bug people post about: a softmax cannot put probability near 1 on
several classes at once, so the model learns to spread it. Empty rows add no loss at all.

They also make Keras and mlstm train differently. Keras reports the loss
``Σ_j t_j (lse(a) - a_j)`` but, from logits (``from_logits=True``, or a softmax head whose
logits Keras' TensorFlow backend reads), differentiates it with TensorFlow's
``softmax_cross_entropy_with_logits``: ``softmax(a) - t``, the derivative only for rows
summing to 1. mlstm trains with the derivative, ``softmax(a) Σ_j t_j - t`` (the lead's
decision, docs/losses.md), and says so here; ``crosscheck`` shows the difference and
checks that it is exactly that rule.

The same multi-hot targets given to *sparse* categorical cross-entropy (which takes one
class id per row) are refused by mlstm; the finding says why and what to use instead. No
training run is needed, so the check also runs on refused data.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ... import losses as losses_module
from ..findings import Finding
from ..remedies import Remedy

if TYPE_CHECKING:
    from ...losses import Loss
    from ..report import DiagnosisReport

__all__ = ["check_categorical_target_sums"]


def _multi_label_remedy(r: DiagnosisReport, name: str, loss: Loss) -> Remedy | None:
    """Several classes per sample: a sigmoid per class with binary cross-entropy."""
    layer = r.output_layers[name]
    activation = r.head_activations.get(name)
    if activation == "softmax":
        change, new_loss = {layer: "sigmoid"}, losses_module.BinaryCrossentropy()
        words = f"{layer!r}: activation='sigmoid', loss {name!r}: binary_crossentropy"
    elif getattr(loss, "from_logits", False) and activation is None:
        change, new_loss = {}, losses_module.BinaryCrossentropy(from_logits=True)
        words = f"loss {name!r}: binary_crossentropy(from_logits=True)"
    else:
        return None
    return Remedy(f"multi-label:{name}", words, outputs=[name], activations=change,
                  losses={name: new_loss}, from_start=True)


def check_categorical_target_sums(r: DiagnosisReport, found: list[Finding]
                                  ) -> list[Finding]:
    out = []
    for name, loss in r.losses.items():
        t = r.data["targets"].get(name)
        sums = None if t is None else t.get("row_sums")
        C = r.output_shapes[name][-1]
        dense = isinstance(loss, losses_module.CategoricalCrossentropy)
        sparse = isinstance(loss, losses_module.SparseCategoricalCrossentropy)
        if (sums is None or not sums["off"] or C < 2
                or not isinstance(loss, (losses_module.CategoricalCrossentropy,
                                         losses_module.SparseCategoricalCrossentropy))
                or tuple(t["shape"][1:]) != tuple(r.output_shapes[name])):
            continue
        if sparse and not (sums["binary"] and t["one_hot_rows"] < 0.99):
            continue                    # one-hot rows: class_target_format says it
        multi_hot = sums["binary"] and sums["above"] > 0
        kinds = []
        if sums["above"]:
            several = "several classes" if sums["binary"] else "a sum above 1"
            kinds.append(f"{sums['above']} with {several}")
        if sums["empty"]:
            kinds.append(f"{sums['empty']} with no class")
        rest = sums["off"] - sums["above"] - sums["empty"]
        if rest:
            kinds.append(f"{rest} with a sum between 0 and 1")
        counted = (f"{sums['off']} of its {sums['rows']} target rows do not sum to 1 (sums "
                   f"from {sums['min']:g} to {sums['max']:g}: {', '.join(kinds)})")
        from_logits = (r.head_activations.get(name) == "softmax"
                       or getattr(loss, "from_logits", False))
        measured = {"output": name, "classes": C, "loss": loss.name, "rows": sums["rows"],
                    "off": sums["off"], "above": sums["above"], "empty": sums["empty"],
                    "min_sum": sums["min"], "max_sum": sums["max"], "multi_hot": multi_hot,
                    "keras_gradient_differs": bool(dense and from_logits)}
        if sparse:
            text = (f"Output {name!r} has {C} classes and is trained with {loss.name}, which "
                    f"takes one class id per row; its targets are 0/1 rows of shape "
                    f"{tuple(t['shape'])}, and {counted}: multi-label targets. mlstm refuses "
                    "them (Keras' TensorFlow backend fails on the shape)")
        else:
            text = (f"Output {name!r} is trained with {loss.name} over {C} classes, which "
                    f"reads each target row as a distribution over the classes (one-hot, or "
                    f"soft labels summing to 1); {counted}. A softmax cannot put a "
                    "probability near 1 on several classes at once, and a row with no class "
                    "adds no loss")
            if from_logits:
                text += (". Keras and mlstm also train such rows differently: both report the "
                         "loss Σ_j t_j (lse(a) - a_j), but Keras differentiates it from the "
                         "logits with TensorFlow's softmax_cross_entropy_with_logits, "
                         "softmax(a) - t, which is its derivative only for rows summing to 1; "
                         "mlstm trains with the derivative softmax(a)·Σt - t (they differ by "
                         "softmax(a)·(Σt - 1) per row; crosscheck shows and checks it, see "
                         "docs/losses.md)")
        remedy = _multi_label_remedy(r, name, loss) if multi_hot else None
        out.append(Finding(
            "categorical_target_sums", "error" if multi_hot or sparse else "warning",
            (f"Multi-hot targets under {'sparse ' if sparse else ''}categorical "
             f"cross-entropy ({name!r})" if multi_hot else
             f"Categorical cross-entropy targets that do not sum to 1 ({name!r})"),
            text + ".",
            "Several classes per sample (multi-label): one sigmoid per class, "
            f"Dense({C}, activation='sigmoid'), with loss='binary_crossentropy'. One class "
            f"per sample: make each row one-hot (np.eye({C})[y.argmax(axis=-1)]), or normalise "
            "soft targets, y / y.sum(axis=-1, keepdims=True)"
            + (", and use loss='categorical_crossentropy' for one-hot rows." if sparse
               else "."),
            measured, remedy=remedy,
            why_not_tried=None if remedy is not None else
            "which classes each row should have is for you to say"))
    return out
