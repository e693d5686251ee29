"""Findings on classification heads, from the compile settings and the targets: a softmax
over one unit, categorical cross-entropy on one unit, ``from_logits=True`` on an output
that is already a sigmoid or softmax, and class targets in the other loss's format (one-hot
targets given to sparse categorical cross-entropy, class ids given to categorical).

These are the bugs people post about Keras classification models. None needs a training
run, so they also run when mlstm refused the data (the format of class targets is what it
refuses); each reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and returns
a list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ... import losses as losses_module
from ..findings import Finding
from ..remedies import Remedy

if TYPE_CHECKING:
    from ...losses import Loss
    from ..report import DiagnosisReport

__all__ = ["check_class_targets", "check_single_unit_softmax", "check_categorical_on_one_unit",
           "check_from_logits_on_activated"]

_CATEGORICAL = (losses_module.CategoricalCrossentropy, losses_module.SparseCategoricalCrossentropy)


def _units(r: DiagnosisReport, name: str) -> int:
    return r.output_shapes[name][-1]


def check_class_targets(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    """Class ids given to categorical cross-entropy, or one-hot rows to the sparse one."""
    out = []
    for name, loss in r.losses.items():
        t = r.data["targets"].get(name)
        C = _units(r, name)
        if t is None or C < 2 or not isinstance(loss, _CATEGORICAL):
            continue
        given, wanted = tuple(t["shape"][1:]), r.output_shapes[name]
        sparse = isinstance(loss, losses_module.SparseCategoricalCrossentropy)
        if sparse and given == wanted and t["one_hot_rows"] >= 0.99:
            out.append(Finding(
                "class_target_format", "error",
                f"One-hot targets given to sparse categorical cross-entropy ({name!r})",
                f"Output {name!r} has {C} softmax classes and is trained with "
                f"sparse_categorical_crossentropy, which takes one class id per row (shape "
                f"(N,) or (N, 1)); its targets have shape {tuple(t['shape'])} and "
                f"{100 * t['one_hot_rows']:.0f}% of their rows are one-hot. mlstm refuses "
                "them; Keras' TensorFlow backend fails on the shape.",
                "Keep the one-hot targets and use loss='categorical_crossentropy', or keep "
                "the loss and pass the class ids y.argmax(axis=-1).",
                {"output": name, "classes": C, "target_shape": t["shape"],
                 "one_hot_rows": t["one_hot_rows"]},
                remedy=Remedy(f"class-targets:{name}", f"loss {name!r}: "
                              "categorical_crossentropy (one-hot targets kept)",
                              outputs=[name], from_start=True,
                              losses={name: losses_module.CategoricalCrossentropy(
                                  from_logits=loss.from_logits)})))
        elif (not sparse and given != wanted and t["whole_numbers"]
              and given in (wanted[:-1], wanted[:-1] + (1,))
              and 0 <= t["min"] and t["max"] < C):
            out.append(Finding(
                "class_target_format", "error",
                f"Class ids given to categorical cross-entropy ({name!r})",
                f"Output {name!r} has {C} softmax classes and is trained with "
                f"categorical_crossentropy, which takes one-hot targets of shape "
                f"(N, {', '.join(map(str, wanted))}); its targets have shape "
                f"{tuple(t['shape'])} and hold whole numbers from {t['min']:.0f} to "
                f"{t['max']:.0f}: class ids. mlstm refuses them.",
                "Keep the ids and use loss='sparse_categorical_crossentropy', or one-hot them: "
                f"np.eye({C})[y.astype(int).ravel()].",
                {"output": name, "classes": C, "target_shape": t["shape"],
                 "min": t["min"], "max": t["max"]},
                remedy=Remedy(f"class-targets:{name}", f"loss {name!r}: "
                              "sparse_categorical_crossentropy (class ids kept)",
                              outputs=[name], from_start=True,
                              losses={name: losses_module.SparseCategoricalCrossentropy(
                                  from_logits=loss.from_logits)})))
    return out


def _binary_remedy(r: DiagnosisReport, name: str, key: str, words: str) -> Remedy:
    """The two-class fix: a sigmoid over the one unit, trained with binary cross-entropy."""
    layer = r.output_layers[name]
    change = {} if r.head_activations.get(name) == "sigmoid" else {layer: "sigmoid"}
    return Remedy(key, words, outputs=[name], activations=change,
                  losses={name: losses_module.BinaryCrossentropy()})


def check_single_unit_softmax(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    for name, activation in r.head_activations.items():
        if activation != "softmax" or _units(r, name) != 1:
            continue
        layer = r.output_layers[name]
        norm = _layer_gradient(r, layer)
        measured: dict[str, Any] = {"output": name, "layer": layer}
        text = (f"Output {name!r} is a softmax over one unit: softmax(a) = e^a / e^a = 1 for "
                "every input, so the prediction is the constant 1 and no gradient passes "
                "back through it")
        if norm is not None:
            text += f" (measured: the gradient of {layer!r}'s weights on the batch is {norm:.3g})"
            measured["gradient_norm"] = norm
        out.append(Finding(
            "single_unit_softmax", "error", f"Softmax over a single unit ({name!r})",
            text + ". The model cannot learn this output.",
            f"For two classes: Dense(1, activation='sigmoid') with loss='binary_crossentropy' "
            "(targets 0/1). For C classes: Dense(C, activation='softmax') with "
            "categorical_crossentropy (one-hot targets) or sparse_categorical_crossentropy "
            "(class ids).",
            measured,
            remedy=_binary_remedy(r, name, f"binary-head:{name}",
                                  f"{layer!r}: activation='sigmoid', loss {name!r}: "
                                  "binary_crossentropy")))
    return out


def check_categorical_on_one_unit(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    for name, loss in r.losses.items():
        if (not isinstance(loss, _CATEGORICAL) or _units(r, name) != 1
                or r.head_activations.get(name) == "softmax"):   # single_unit_softmax says it
            continue
        activation = r.head_activations.get(name) or "linear"
        value = r.static["output_losses"][r.output_names.index(name)] if r.static else None
        text = (f"Output {name!r} has one {activation} unit and is trained with {loss.name}. "
                "Categorical cross-entropy normalizes the predictions over the classes, "
                "q = p / Σp, and over one class q = 1 for every sample: the loss is a "
                "constant and its gradient zero")
        if value is not None:
            text += f" (measured on the batch: loss {value:.3g})"
        out.append(Finding(
            "categorical_on_one_unit", "error",
            f"Categorical cross-entropy on a one-unit head ({name!r})",
            text + ". The model cannot learn this output.",
            "For a yes/no target use loss='binary_crossentropy' on a sigmoid head "
            "(Dense(1, activation='sigmoid')); categorical cross-entropy needs one unit per "
            "class with a softmax.",
            {"output": name, "activation": activation, "loss": loss.name, "batch_loss": value},
            remedy=_binary_remedy(r, name, f"binary-head:{name}",
                                  (f"{r.output_layers[name]!r}: activation='sigmoid', "
                                   if activation != "sigmoid" else "")
                                  + f"loss {name!r}: binary_crossentropy")))
    return out


def check_from_logits_on_activated(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    for name, loss in r.losses.items():
        activation = r.head_activations.get(name)
        if (loss is None or not getattr(loss, "from_logits", False)
                or activation not in ("sigmoid", "softmax")):
            continue
        own = activation == getattr(loss, "logits_activation", None)
        measured: dict[str, Any] = {"output": name, "activation": activation, "loss": loss.name}
        as_logits = _loss_on_probabilities_as_logits(r, name, loss)
        if own:
            text = (f"Output {name!r} is a {activation} of its logits, and its loss {loss.name} "
                    "has from_logits=True: the output holds probabilities, not logits. mlstm, "
                    "like Keras' TensorFlow backend, notices and computes the loss from the "
                    "logits the activation kept (TensorFlow warns); Keras' JAX and PyTorch "
                    "backends read the probabilities as logits")
            if as_logits is not None:
                text += (f": on this batch their loss would be {as_logits[1]:.4g} instead of "
                         f"{as_logits[0]:.4g}, and its gradient is squashed by the "
                         f"{activation}'s slope (at most 0.25)")
                measured.update(loss_from_logits=as_logits[0], loss_probabilities_as_logits=
                                as_logits[1])
            out.append(Finding(
                "from_logits_on_activated", "warning",
                f"from_logits=True on the {activation} output {name!r}", text + ".",
                f"Either keep activation='{activation}' and set from_logits=False (the "
                "default), or drop the activation (Dense(..., activation=None)) and keep "
                f"from_logits=True, applying the {activation} at prediction time.",
                measured,
                why_not_tried="mlstm trains this output from its logits either way, so "
                              "retraining here cannot show the difference"))
        else:
            text = (f"Output {name!r} is a {activation} of its logits, but its loss "
                    f"{loss.name} (from_logits=True) works from {loss.logits_activation} "
                    "logits: the loss reads the probabilities as logits, on every backend "
                    "and in mlstm")
            out.append(Finding(
                "from_logits_on_activated", "error",
                f"from_logits=True on the {activation} output {name!r}", text + ".",
                f"Set from_logits=False, or give {name!r} the activation its loss expects.",
                measured,
                remedy=Remedy(f"from-logits:{name}", f"loss {name!r}: {loss.name} with "
                              "from_logits=False", outputs=[name],
                              losses={name: type(loss)(**{**_options(loss),
                                                          "from_logits": False})})))
    return out


def _options(loss: Loss) -> dict[str, Any]:
    config = dict(loss.get_config())
    config.pop("name", None)
    return config


def _loss_on_probabilities_as_logits(r: DiagnosisReport, name: str, loss: Loss
                                     ) -> tuple[float, float] | None:
    """``(loss as trained, loss with the probabilities read as logits)`` on the batch."""
    if r.static is None:
        return None
    k = r.output_names.index(name)
    p = r.static["predictions"].get(name)
    y = r.static["head_targets"].get(name)
    if p is None or y is None:
        return None
    with np.errstate(all="ignore"):
        wrong = float(np.mean(loss.call(y, p)))   # from_logits=True: p read as logits
    return float(r.static["output_losses"][k]), wrong


def _layer_gradient(r: DiagnosisReport, layer: str) -> float | None:
    """The norm of the total gradient on ``layer``'s weights on the batch (None without
    weights or measurements)."""
    if r.static is None:
        return None
    grads = [g for p, g in r.static["total"].items() if p.split("/", 1)[0] == layer]
    if not grads:
        return None
    return float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))

