"""The cross-check: :func:`crosscheck` runs a model in mlstm and in Keras from the same
weights and compares every number (forward, per-output losses, gradients, optimizer steps).

Both sides are compiled copies with fresh optimizer state (Keras' optimizer starts fresh
whenever a model is cloned): what is compared is the same configuration from the same
weights. The Keras side runs with ``floatx`` and the dtype policy set to the model's dtype
(the compiled loss builds its per-output loss trackers in ``floatx`` at the first step).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ..._typing import Array

from .backend import import_keras, import_tensorflow, is_keras_model, keras_dtype
from .compile_settings import keras_compile_args
from .exporting import to_keras
from .importing import from_keras
from ...layers.dropout import zero_dropout_rates as zero_layer_dropout_rates
from .layer_mapping import copy_weights, zero_dropout_rates
from .report import diff as _diff
from .report import format_report
from .target_sums import RULE, target_sum_outputs, tensorflow_rule_twin

__all__ = ["crosscheck", "DEFAULT_TOLERANCES"]

if TYPE_CHECKING:
    from ...diagnostics.diagnosis import ModelData
    from ...model import Model

#: dtype -> (rtol, atol) used by :func:`crosscheck` unless given.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {"float32": (1e-4, 1e-5),
                                                      "float64": (1e-9, 1e-9)}


def _clone_keras(keras_model: Any, zeroed: list[str] | None = None) -> Any:
    """A compiled copy of a Keras model: same graph, weights, losses and optimizer config.

    Its dropout rates are set to 0 (:func:`zero_dropout_rates`; those changed are appended to
    ``zeroed`` when given): Keras' random masks cannot be reproduced, and :func:`crosscheck`
    sets mlstm's copy's rates to 0 too (its ``train_on_batch`` draws masks), so both sides
    compute the network's deterministic part. Inference does not depend on the rates.
    """
    keras = import_keras()
    loss, loss_weights = keras_compile_args(keras_model)
    if not getattr(keras_model, "compiled", False) or loss is None:
        raise ValueError(f"Keras model {keras_model.name!r} must be compiled (with a loss and "
                         "an optimizer) to be cross-checked")
    loss_dtype = getattr(getattr(keras_model, "_compile_loss", None), "dtype", None) \
        or keras.config.floatx()
    with keras_dtype(loss_dtype):
        # Rebuilt from its config rather than keras.models.clone_model, which would also
        # deserialize the compile config and fail on an unregistered custom loss.
        config = keras_model.get_config()
        changed = zero_dropout_rates(config)
        if zeroed is not None:
            zeroed.extend(changed)
        twin = type(keras_model).from_config(config)
        twin.set_weights(keras_model.get_weights())
        optimizer = type(keras_model.optimizer).from_config(keras_model.optimizer.get_config())
        twin.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                     run_eagerly=bool(getattr(keras_model, "run_eagerly", False)))
    return twin


def _pair(model: Any, twin: Any, zeroed: list[str]) -> tuple[Model, Any, str]:
    """(mlstm model, Keras model): compiled copies with the same weights, Keras' dropout
    rates set to 0 (listed in ``zeroed``)."""
    from ...model import Model

    if isinstance(model, Model):
        if not model.compiled:
            raise ValueError("crosscheck needs a compiled mlstm model (model.compile(...))")
        mine = model.clone()
        if twin is None:
            theirs = to_keras(model)
            if zero_dropout_rates(theirs.get_config()):
                theirs = _clone_keras(theirs, zeroed)
        else:
            if not is_keras_model(twin):
                raise TypeError(f"twin must be a keras.Model, got {type(twin).__name__}")
            theirs = _clone_keras(twin, zeroed)
            copy_weights(mine, theirs)
        return mine, theirs, "mlstm"
    if is_keras_model(model):
        theirs = _clone_keras(model, zeroed)
        if twin is None:
            mine = from_keras(model)
            if not mine.compiled:
                raise ValueError("crosscheck needs a compiled Keras model")
        else:
            if not isinstance(twin, Model) or not twin.compiled:
                raise TypeError("twin must be a compiled mlstm.Model")
            mine = twin.clone()
            copy_weights(model, mine)
        return mine, theirs, "keras"
    raise TypeError(f"crosscheck expects an mlstm.Model or a keras.Model, got "
                    f"{type(model).__name__}")


def _weight_names(model: Model, keras_model: Any) -> dict[int, str]:
    """{id(Keras variable): "layer/weight"}, matched by layer name and Keras weight order."""
    names: dict[int, str] = {}
    for klayer in keras_model.layers:
        if not klayer.weights:
            continue
        try:
            layer = model.get_layer(klayer.name)
        except ValueError:
            raise ValueError(f"Keras layer {klayer.name!r} has no mlstm layer of the same name; "
                             "the two models must have the same layer names") from None
        if len(layer.weight_names) != len(klayer.weights):
            raise ValueError(f"layer {klayer.name!r}: Keras has {len(klayer.weights)} weights, "
                             f"mlstm {len(layer.weight_names)}")
        for var, name in zip(klayer.weights, layer.weight_names):
            names[id(var)] = name
    return names


def _keras_output_losses(keras_model: Any, ys: list[Array], y_pred: list[Any],
                         output_names: list[str]) -> list[tuple[int, Any, float]]:
    """[(output index, unweighted loss, weight)] from Keras' own compiled loss objects."""
    flat = getattr(keras_model._compile_loss, "_flat_losses", None)
    if flat is None:
        raise RuntimeError("Keras' compiled loss is not built (Keras internals changed?)")
    keras_names = list(getattr(keras_model, "output_names", output_names))
    per = []
    for path, loss_fn, weight, _ in flat:
        if len(path) == 0:
            k = 0
        elif isinstance(path[0], str):
            k = keras_names.index(path[0])
        else:
            k = int(path[0])
        per.append((k, loss_fn(ys[k], y_pred[k]), 1.0 if weight is None else weight))
    return per


def _keras_structure(arrays: list[Array], single: bool) -> Array | list[Array]:
    return arrays[0] if single else list(arrays)


@overload
def crosscheck(model: Any, x: ModelData, y: ModelData, steps: int = ..., twin: Any = ...,
               as_dict: Literal[False] = ..., rtol: float | None = ..., atol: float | None = ...,
               run_eagerly: bool | None = ...) -> str: ...


@overload
def crosscheck(model: Any, x: ModelData, y: ModelData, steps: int = ..., twin: Any = ..., *,
               as_dict: Literal[True], rtol: float | None = ..., atol: float | None = ...,
               run_eagerly: bool | None = ...) -> dict[str, Any]: ...


@overload
def crosscheck(model: Any, x: ModelData, y: ModelData, steps: int = ..., twin: Any = ...,
               as_dict: bool = ..., rtol: float | None = ..., atol: float | None = ...,
               run_eagerly: bool | None = ...) -> str | dict[str, Any]: ...


def crosscheck(model: Any, x: ModelData, y: ModelData, steps: int = 3, twin: Any = None,
               as_dict: bool = False, rtol: float | None = None, atol: float | None = None,
               run_eagerly: bool | None = None) -> str | dict[str, Any]:
    """Run ``model`` in mlstm and in Keras from the same weights and compare every number.

    Parameters
    ----------
    model : mlstm.Model or keras.Model
        Compiled (losses, loss weights, optimizer). Neither it nor ``twin`` is modified:
        both sides are compiled copies with fresh optimizer state.
    x, y : array, list of arrays or dict by name
        One batch: inputs (N, T, D) per input and targets per output.
    steps : int, default 3
        Optimizer steps (``train_on_batch`` on ``(x, y)``) to compare.
    twin : keras.Model or mlstm.Model, optional
        The compiled counterpart in the other framework, when it cannot be translated
        (a custom loss written once in Keras and once in NumPy, for instance); its weights
        are replaced by ``model``'s (in a copy).
    as_dict : bool, default False
        Return the report as a dict instead of a plain-text table.
    rtol, atol : float, optional
        Tolerances of the verdicts, ``|mlstm - keras| <= atol + rtol |keras|`` entrywise;
        by default 1e-4 / 1e-5 in float32 and 1e-9 / 1e-9 in float64.
    run_eagerly : bool, optional
        Run Keras' training steps eagerly. By default (None) Keras decides as ``fit``
        would: a traced ``tf.function`` (about 2 s of tracing per model), unless the model
        was compiled with ``run_eagerly=True``. The arithmetic is the same either way.

    Returns
    -------
    str or dict
        The dict has ``inference`` {output: diff} (``training=False``), ``forward``
        {output: diff} (training mode), ``loss`` {"total" | output: diff with the
        two values}, ``gradients`` {"total" | output: {param: diff}} (an output's entry is
        the gradient of its *weighted* loss), ``steps`` [{"loss": ..., "weights":
        {param: diff}}], ``max_abs`` per section, ``ok``, ``dropout_rates_zeroed`` (the
        Keras dropout rates set to 0 for the training comparisons), and the settings. Each
        diff is ``{"max_abs", "max_rel", "ok"}``. When categorical cross-entropy from
        logits meets targets whose rows do not sum to 1 (where Keras' gradient is
        TensorFlow's ``softmax(a) - t`` and mlstm's the loss's derivative,
        docs/losses.md), ``target_sums`` says which outputs and rows, and whether mlstm
        trained with TensorFlow's rule matches Keras in every gradient and step
        (``ok``); each failed diff it accounts for has ``"explained": True``.

    Raises
    ------
    TypeError
        When ``model`` (or ``twin``) is neither an mlstm.Model nor a keras.Model.
    ValueError
        For ``steps`` below 0, an uncompiled model, or a model Keras and mlstm cannot share
        (see :func:`from_keras` and :func:`to_keras`).

    Examples
    --------
    Needs the ``keras`` extra (``tests/test_interop_examples.py`` runs it)::

        import numpy as np
        import mlstm
        from mlstm.interop.keras import crosscheck

        x = mlstm.Input(shape=(5, 3), name="x")
        y = mlstm.Dense(1, name="y")(mlstm.LSTM(4, name="lstm")(x))
        model = mlstm.Model(x, y)
        model.compile(optimizer="adam", loss="mse")
        rng = np.random.default_rng(0)
        xs, ys = rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 1))
        print(crosscheck(model, xs, ys, steps=2, run_eagerly=True))     # the table
        report = crosscheck(model, xs, ys, steps=2, as_dict=True, run_eagerly=True)
        assert report["ok"], report["max_abs"]
    """
    keras, tf = import_tensorflow()
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    zeroed: list[str] = []
    mine, theirs, started = _pair(model, twin, zeroed)
    # mlstm's train_on_batch draws dropout masks as Keras' does: both copies at rate 0
    zero_layer_dropout_rates(mine.layers)
    if run_eagerly is not None:
        theirs.run_eagerly = bool(run_eagerly)
    dtype = mine.dtype
    default_rtol, default_atol = DEFAULT_TOLERANCES[dtype]
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    xs = mine._inputs(x)
    ys = mine._targets(y, xs[0].shape[0])
    kx = _keras_structure(xs, mine._single_input)
    ky = _keras_structure(ys, mine._single_output)

    report: dict[str, Any] = {"started_as": started, "dtype": dtype, "rtol": rtol, "atol": atol,
              "run_eagerly": bool(theirs.run_eagerly),
              "samples": int(xs[0].shape[0]), "steps": [], "keras": keras.__version__,
              "dropout_rates_zeroed": zeroed,
              "tensorflow": tf.__version__}
    # Keras makes some tensors in floatx while it runs (the compiled loss builds its
    # per-output loss trackers at the first call, for instance): the Keras side runs with
    # floatx = the model's dtype, as float64 Keras training is meant to be run.
    with keras_dtype(dtype):
        _compare(mine, theirs, xs, ys, kx, ky, steps, rtol, atol, report)
    return report if as_dict else format_report(report)


def _compare(mine: Model, theirs: Any, xs: list[Array], ys: list[Array], kx: Any, ky: Any,
             steps: int, rtol: float, atol: float, report: dict[str, Any]) -> None:
    """Fill ``report`` with the comparisons of :func:`crosscheck`."""
    import tensorflow as tf

    names = mine.output_names
    var_names = _weight_names(mine, theirs)

    # ---- inference (dropout is the identity, BatchNormalization uses moving statistics)
    k_inference = theirs(kx, training=False)
    k_inference = list(k_inference) if isinstance(k_inference, (list, tuple)) else [k_inference]
    report["inference"] = {name: _diff(out, np.asarray(k_inference[k]), rtol, atol)
                           for k, (name, out) in enumerate(zip(names,
                                                              mine.forward(xs).outputs))}

    # ---- forward, losses, gradients (mlstm)
    tape = mine.forward(xs, training=True)
    result = mine.loss_and_output_grads(tape, ys)
    grads_total = mine.backward(tape, result.d_outputs, result.d_logits)
    grads_per = {k: mine.backward(tape, *result.for_output(k))
                 for k in range(len(names)) if result.per_output[k] is not None}

    # ---- the same in Keras, with its own compiled loss objects
    trainable = list(theirs.trainable_weights)
    with tf.GradientTape(persistent=True) as gtape:
        y_pred = theirs(kx, training=True)
        y_pred_list = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        total = theirs.compute_loss(x=kx, y=ky, y_pred=y_pred, training=True)
        per = _keras_output_losses(theirs, ys, y_pred_list, names)
        weighted = {k: value * weight for k, value, weight in per}
    k_grads_total = gtape.gradient(total, trainable)
    k_grads_per = {k: gtape.gradient(w, trainable) for k, w in weighted.items()}
    del gtape

    report["forward"] = {name: _diff(tape.outputs[k], np.asarray(y_pred_list[k]), rtol, atol)
                         for k, name in enumerate(names)}
    losses = {"total": _diff(result.total, float(total), rtol, atol, keep_values=True)}
    keras_per = {k: float(value) for k, value, _ in per}
    for k, name in enumerate(names):
        mine_loss = result.per_output[k]
        if mine_loss is not None or k in keras_per:
            if mine_loss is None or k not in keras_per:
                raise ValueError(f"output {name!r} has a loss in only one of the models")
            losses[name] = _diff(mine_loss, keras_per[k], rtol, atol, keep_values=True)
    report["loss"] = losses

    def grad_table(mine_grads: dict[str, Array], keras_grads: list[Any]) -> dict[str, Any]:
        table = {}
        for var, g in zip(trainable, keras_grads):
            name = var_names[id(var)]
            g = np.zeros(var.shape) if g is None else np.asarray(tf.convert_to_tensor(g))
            table[name] = _diff(mine_grads[name], g, rtol, atol)
        return table

    report["gradients"] = {"total": grad_table(grads_total, k_grads_total)}
    for k in sorted(k_grads_per):
        report["gradients"][names[k]] = grad_table(grads_per[k], k_grads_per[k])

    # ---- CCE targets that do not sum to 1: the same with TensorFlow's gradient, to show
    # that it is the whole difference (mlstm.interop.keras.target_sums)
    sums = target_sum_outputs(mine, tape, ys)
    rule: Model | None = None
    rule_params: dict[str, Array] = {}            # (filled when rule is made)
    if sums:
        rule = tensorflow_rule_twin(mine, sums)        # before any step: the same weights
        r_tape = rule.forward(xs, training=True)
        r_result = rule.loss_and_output_grads(r_tape, ys)
        rule_report: dict[str, Any] = {"gradients": {"total": grad_table(
            rule.backward(r_tape, r_result.d_outputs, r_result.d_logits), k_grads_total)},
            "steps": []}
        for k in sorted(k_grads_per):
            rule_report["gradients"][names[k]] = grad_table(
                rule.backward(r_tape, *r_result.for_output(k)), k_grads_per[k])
        rule_params = dict(rule.params)
        rule_params.update({f"{layer.name}/{k}": layer.state[k] for layer in rule.layers
                            for k in layer.state_names if k in layer.state})

    # ---- optimizer steps
    # the live arrays, parameters and layers' state (moving statistics): they follow every step
    params = dict(mine.params)
    params.update({f"{layer.name}/{k}": layer.state[k] for layer in mine.layers
                   for k in layer.state_names if k in layer.state})
    for step in range(1, steps + 1):
        k_logs = theirs.train_on_batch(kx, ky, return_dict=True)
        m_logs = mine.train_on_batch(xs, ys, return_dict=True)
        assert isinstance(m_logs, dict)         # return_dict=True
        step_losses = {key: _diff(m_logs[key], k_logs[key], rtol, atol, keep_values=True)
                       for key in m_logs if key.endswith("loss") and key in k_logs}
        weights: dict[str, Any] = {}
        for klayer in theirs.layers:
            for var in klayer.weights:
                name = var_names[id(var)]
                weights[name] = _diff(params[name], np.asarray(var.numpy()), rtol, atol)
        report["steps"].append({"step": step, "loss": step_losses, "weights": weights})
        if rule is not None:
            r_logs = rule.train_on_batch(xs, ys, return_dict=True)
            assert isinstance(r_logs, dict)     # return_dict=True
            rule_report["steps"].append({
                "loss": {key: _diff(r_logs[key], k_logs[key], rtol, atol)
                         for key in step_losses},
                "weights": {name: _diff(rule_params[name], np.asarray(var.numpy()), rtol,
                                        atol)
                            for klayer in theirs.layers for var in klayer.weights
                            for name in [var_names[id(var)]]}})

    sections = {"inference": list(report["inference"].values()),
                "forward": list(report["forward"].values()),
                "loss": list(report["loss"].values()),
                "gradients": [d for table in report["gradients"].values()
                              for d in table.values()],
                "step losses": [d for s in report["steps"] for d in s["loss"].values()],
                "weights": [d for s in report["steps"] for d in s["weights"].values()]}
    report["max_abs"] = {key: max((d["max_abs"] for d in ds), default=0.0)
                         for key, ds in sections.items()}
    all_diffs = [d for ds in sections.values() for d in ds]
    report["checked"] = len(all_diffs)
    report["failed"] = sum(not d["ok"] for d in all_diffs)
    report["ok"] = report["failed"] == 0
    if rule is not None:
        report["target_sums"] = _explain(report, rule_report, sums, names)


def _explain(report: dict[str, Any], rule_report: dict[str, Any],
             sums: dict[int, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Mark each failed comparison whose TensorFlow-rule counterpart passes ``explained``;
    the ``target_sums`` entry of the report."""
    pairs = [(d, rule_report["gradients"][group][name])
             for group, table in report["gradients"].items() for name, d in table.items()]
    for s, r in zip(report["steps"], rule_report["steps"]):
        pairs += [(s["loss"][key], r["loss"][key]) for key in s["loss"]]
        pairs += [(s["weights"][name], r["weights"][name]) for name in s["weights"]]
    for d, r in pairs:
        if not d["ok"] and r["ok"]:
            d["explained"] = True
    failed = sum(not d["ok"] for d in report["inference"].values()) + \
        sum(not d["ok"] for d in report["forward"].values()) + \
        sum(not d["ok"] for d in report["loss"].values()) + \
        sum(not d["ok"] for d, _ in pairs)
    explained = sum(bool(d.get("explained")) for d, _ in pairs)
    return {"rule": RULE, "outputs": {info["output"]: {k: v for k, v in info.items()
                                                       if k != "output"}
                                      for info in sums.values()},
            "checked": len(pairs), "rule_failed": sum(not r["ok"] for _, r in pairs),
            "explained": explained, "unexplained": failed - explained,
            "ok": failed == explained}
