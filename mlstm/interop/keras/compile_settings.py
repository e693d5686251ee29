"""Compile settings both ways: losses, loss weights and the optimizer, through the registries.

Losses
    A registered loss class maps to Keras through its own ``keras_name`` (the Keras class,
    e.g. ``MeanSquaredError``) and ``keras_function`` (the function ``"mse"`` resolves to,
    e.g. ``mean_squared_error``). The Keras class's options that the mlstm constructor takes
    are carried; any other Keras option must sit at Keras' default (``axis=-1``), and the
    reduction must be Keras' default ``"sum_over_batch_size"``. Going to Keras, an mlstm
    option the Keras class does not take must sit at mlstm's default.
Optimizers
    Found in :data:`mlstm.registry.OPTIMIZERS` under their Keras class names ("Adam",
    "RMSprop", ...); mlstm's optimizer configs use Keras' option names. From Keras, through
    :func:`mlstm.optimizers.from_keras_object` (what ``compile`` uses for a Keras object).
Metrics
    Carried both ways, per output, through :data:`mlstm.registry.METRICS`: a Keras metric
    (a name, a ``keras.metrics`` class instance or function) maps to the registered mlstm
    metric that Keras' own name for it (its class name, its ``name``, the function's name)
    is registered under, with Keras' History key kept. ``"accuracy"``/``"acc"`` pass as they
    are (both resolve them per output the same way, :func:`mlstm.metrics.resolve`). A metric
    mlstm has not registered, one with options away from their defaults or renamed, and
    ``weighted_metrics`` are refused by name.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

from .backend import import_keras

if TYPE_CHECKING:
    from ...losses import Loss
    from ...model import Model
    from ...optimizers import Optimizer

__all__ = ["loss_from_keras", "loss_to_keras", "optimizer_from_keras", "optimizer_to_keras",
           "metrics_from_keras", "metrics_to_keras", "keras_compile_args", "compile_like",
           "compile_keras_like"]


# --------------------------------------------------------------------------- losses
def _loss_classes() -> list[type[Loss]]:
    """Registered loss classes that declare a Keras class or function themselves."""
    from ...registry import LOSSES
    return [cls for cls in LOSSES.classes()
            if vars(cls).get("keras_name") or vars(cls).get("keras_function")]


def _supported_losses() -> str:
    return ", ".join(f"{cls.keras_name or '-'} / {cls.keras_function or '-'}"
                     for cls in _loss_classes())


def _parameters(cls: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def loss_from_keras(spec: Any, where: str) -> Loss | None:
    """An mlstm loss for one Keras loss spec (a name, a Keras loss function or instance)."""
    keras = import_keras()
    if spec is None:
        return None
    resolved = keras.losses.get(spec) if isinstance(spec, str) else spec
    function_name = getattr(resolved, "__name__", None)
    if function_name and getattr(keras.losses, function_name, None) is resolved:
        for cls in _loss_classes():
            if vars(cls).get("keras_function") == function_name:
                return cls()
    class_name = type(resolved).__name__
    if type(resolved) is getattr(keras.losses, class_name, None):
        for cls in _loss_classes():
            if vars(cls).get("keras_name") == class_name:
                return _loss_instance(cls, resolved, where)
    name = function_name or getattr(resolved, "name", repr(resolved))
    raise ValueError(f"{where}: loss {name!r} has no mlstm translation (supported Keras "
                     f"losses, class / function: {_supported_losses()}). Convert with "
                     "compile=False and compile the mlstm model with a NumPy version of it (a "
                     "mlstm.losses.Loss subclass or a function)")


def _loss_instance(cls: type[Loss], kloss: Any, where: str) -> Loss:
    """``cls`` with the options of the Keras loss instance ``kloss``."""
    config = kloss.get_config()
    kind = type(kloss).__name__
    if config.get("reduction") != "sum_over_batch_size":
        raise ValueError(f"{where}: loss {config.get('name')!r} with reduction "
                         f"{config.get('reduction')!r} is not supported (only "
                         "'sum_over_batch_size', Keras' default)")
    mine, theirs = _parameters(cls), _parameters(type(kloss))
    options: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("name", "reduction", "dtype"):
            continue
        if key in mine:
            options[key] = value
            continue
        if key in theirs and value == theirs[key].default:
            continue
        only = (f" (mlstm's {cls.__name__} computes {key}={theirs[key].default!r} only)"
                if key in theirs else "")
        raise ValueError(f"{where}: {kind}({key}={value!r}) is not supported{only}")
    return cls(**options)


def loss_to_keras(loss: Loss | None, where: str) -> Any:
    """The Keras loss instance for an mlstm loss (its class's ``keras_name``)."""
    keras = import_keras()
    if loss is None:
        return None
    cls = type(loss)
    name = vars(cls).get("keras_name")
    kcls = getattr(keras.losses, name, None) if name else None
    if kcls is None or cls not in _loss_classes():
        raise ValueError(f"{where}: loss {loss.name!r} ({cls.__name__}) has no Keras "
                         "translation; call to_keras(model, compile=False) and compile the Keras "
                         "model with a Keras version of it")
    theirs, defaults = _parameters(kcls), _parameters(cls)
    options: dict[str, Any] = {}
    for key, value in loss.get_config().items():
        if key == "name":
            continue
        if key in theirs:
            options[key] = value
        elif key not in defaults or value != defaults[key].default:
            raise ValueError(f"{where}: loss {loss.name!r} option {key}={value!r} has no "
                             f"counterpart in keras.losses.{name}; call to_keras(model, "
                             "compile=False) and compile the Keras model yourself")
    return kcls(**options)


# --------------------------------------------------------------------------- optimizers
def _optimizer_classes() -> dict[str, type[Optimizer]]:
    """{Keras class name: mlstm optimizer class}: the registry once optimizers register
    themselves there, else mlstm.optimizers' Adam and SGD (named like Keras' classes)."""
    from ...registry import OPTIMIZERS
    classes = OPTIMIZERS.classes()
    if not classes:
        from ... import optimizers
        classes = [optimizers.Adam, optimizers.SGD]
    return {cls.__name__: cls for cls in classes}


def optimizer_from_keras(optimizer: Any) -> Optimizer:
    """The mlstm optimizer with the Keras optimizer's configuration (fresh state): the one
    place that maps them is :func:`mlstm.optimizers.from_keras_object` (used by
    ``compile(optimizer=keras_object)`` too), which refuses by name what mlstm cannot map."""
    from ... import optimizers
    mapped = optimizers.from_keras_object(optimizer)
    if mapped is None:
        raise ValueError(f"optimizer {optimizer!r} is not a Keras optimizer")
    return mapped


def optimizer_to_keras(optimizer: Optimizer) -> Any:
    """The Keras optimizer with the mlstm optimizer's configuration (fresh state)."""
    keras = import_keras()
    cls = type(optimizer)
    classes = _optimizer_classes()
    kcls = getattr(keras.optimizers, cls.__name__, None)
    if classes.get(cls.__name__) is not cls or kcls is None:
        raise ValueError(f"optimizer {cls.__name__} has no Keras translation (mlstm's "
                         f"{', '.join(sorted(classes))} have)")
    theirs = _parameters(kcls)
    options: dict[str, Any] = {}
    for key, value in optimizer.get_config().items():
        if key == "name":
            continue
        if key not in theirs:
            raise ValueError(f"optimizer {cls.__name__}: option {key}={value!r} has no "
                             f"counterpart in keras.optimizers.{cls.__name__}")
        if key == "learning_rate" and isinstance(value, dict):
            # an mlstm schedule: Keras' schedule of the same name takes the same config
            kschedule = getattr(keras.optimizers.schedules, value["class_name"], None)
            if kschedule is None:
                raise ValueError(f"optimizer {cls.__name__}: learning-rate schedule "
                                 f"{value['class_name']} has no counterpart in "
                                 "keras.optimizers.schedules")
            value = kschedule.from_config(dict(value["config"]))
        options[key] = value
    return kcls(**options)


# --------------------------------------------------------------------------- metrics
def _registered_metric(name: object) -> Callable[..., Any] | None:
    """The registered mlstm metric function called ``name`` (a name or alias), else None."""
    from ...registry import METRICS
    return METRICS.get(name) if isinstance(name, str) and name in METRICS else None


def _is_accuracy(spec: object) -> bool:
    from ...metrics import ACCURACY_NAMES
    return isinstance(spec, str) and spec.lower() in ACCURACY_NAMES


def _metric_refusal(where: str, label: str, why: str, advice: str) -> ValueError:
    from ...metrics import ACCURACY_NAMES
    from ...registry import METRICS
    supported = ", ".join(sorted(METRICS.names(aliases=True) + list(ACCURACY_NAMES)))
    return ValueError(f"{where}: metric {label!r} {why}; {advice} (mlstm's metrics: "
                      f"{supported})")


def _metric_from_keras(spec: Any, where: str,
                       advice: str = "convert with compile=False and compile the "
                                     "mlstm model with metrics mlstm has") -> str:
    """The name to compile mlstm with for one Keras metric spec: Keras' History key for it,
    which mlstm registers for the same metric. ValueError naming the metric otherwise."""
    keras = import_keras()
    if _is_accuracy(spec):          # resolved per output by both (mlstm.metrics.resolve)
        return spec
    if isinstance(spec, str):
        label, key = spec, spec
        try:
            resolved = keras.metrics.get(spec)
        except ValueError:
            raise _metric_refusal(where, label, "is not a Keras metric name", advice) from None
    elif isinstance(spec, keras.metrics.Metric):
        resolved = spec
        label = key = spec.name
    elif callable(spec):
        resolved = spec
        label = key = getattr(spec, "__name__", repr(spec))
    else:
        raise TypeError(f"{where}: metric {spec!r} is neither a name, a keras.metrics.Metric "
                        "nor a function")
    if isinstance(resolved, keras.metrics.Metric):
        kind = type(resolved)
        if label != kind.__name__:
            label = f"{label} ({kind.__name__})"
        fn = _registered_metric(kind.__name__) \
            if kind is getattr(keras.metrics, kind.__name__, None) else None
        if fn is None:
            raise _metric_refusal(where, label, "has no mlstm counterpart", advice)
        defaults = kind().get_config()
        for option, value in resolved.get_config().items():
            if option not in ("name", "dtype") and value != defaults.get(option):
                raise _metric_refusal(where, label, f"with {option}={value!r} is not supported "
                                      f"(mlstm computes {option}={defaults.get(option)!r} only)",
                                      advice)
    else:
        name = getattr(resolved, "__name__", None)
        fn = _registered_metric(name) if getattr(keras.metrics, name or "-", None) is resolved \
            else None
        if fn is None:
            raise _metric_refusal(where, label, "has no mlstm counterpart", advice)
    # mlstm keys a metric by the name it is compiled with, Keras by this key: the same name
    # must mean the same metric on both sides.
    if _registered_metric(key) is not fn:
        raise _metric_refusal(where, label, f"is keyed {key!r} by Keras, a name mlstm does not "
                              f"register for {fn.__name__}", advice)
    return key


def metrics_from_keras(metrics: Any, output_names: list[str]) -> list[list[str]] | None:
    """Keras' compile ``metrics`` read as Keras 3.15 reads them, as one list of mlstm metric
    names per output (None when there are none).

    One output takes every metric given (a list, or the values of a dict). Several outputs
    take one entry per output (a list as long as the outputs) or a dict by output name.
    """
    keras = import_keras()
    n = len(output_names)
    if not metrics:
        return None
    per_output: list[Any]
    if n == 1:
        per_output = [keras.tree.flatten(metrics)]
    elif isinstance(metrics, (list, tuple)) and len(metrics) == n:
        per_output = list(metrics)
    elif isinstance(metrics, dict) and set(metrics) <= set(output_names):
        per_output = [metrics.get(name) for name in output_names]
    else:
        raise ValueError(f"metrics={metrics!r}: for {n} outputs Keras 3.15 takes one entry per "
                         f"output (a list of {n}) or a dict by output name {output_names}")
    per_output = [[] if m is None else list(m) if isinstance(m, (list, tuple)) else [m]
                  for m in per_output]
    if not any(per_output):
        return None
    return [[_metric_from_keras(spec, f"output {name!r}") for spec in specs]
            for name, specs in zip(output_names, per_output)]


def metrics_to_keras(model: Model) -> list[str] | list[list[str]] | None:
    """The mlstm ``model``'s metrics for Keras' compile: one output's list, or one list per
    output; None when there are none. ValueError naming a metric Keras has no twin for."""
    advice = "call to_keras(model, compile=False) and compile the Keras model yourself"
    per_output: list[list[str]] = []
    for name, metrics in zip(model.output_names, model._metrics):
        keys = []
        for fn, key in metrics:
            keys.append(_metric_from_keras(key, f"output {name!r}", advice))
            if not _is_accuracy(key) and _registered_metric(key) is not fn:
                raise _metric_refusal(f"output {name!r}", key, "is not the registered metric "
                                      "of that name", advice)
        per_output.append(keys)
    if not any(per_output):
        return None
    return per_output[0] if len(per_output) == 1 else per_output


# --------------------------------------------------------------------------- compile
def keras_compile_args(keras_model: Any) -> tuple[Any, Any]:
    """The loss and loss_weights the Keras model was compiled with (as given by the user)."""
    stored = getattr(keras_model, "_compile_config", None)
    config = getattr(stored, "config", None) or {}
    loss = config.get("loss", getattr(keras_model, "loss", None))
    return loss, config.get("loss_weights")


def keras_compile_metrics(keras_model: Any) -> tuple[Any, Any]:
    """The metrics and weighted_metrics the Keras model was compiled with (as given)."""
    config = getattr(getattr(keras_model, "_compile_config", None), "config", None) or {}
    return config.get("metrics"), config.get("weighted_metrics")


def compile_like(model: Model, keras_model: Any) -> Model:
    """Compile the mlstm ``model`` with the Keras model's losses, loss weights, metrics and
    optimizer.

    Raises ValueError naming what has no mlstm translation (a custom loss or metric, a
    schedule...).
    """
    loss, loss_weights = keras_compile_args(keras_model)
    metrics, weighted_metrics = keras_compile_metrics(keras_model)
    if weighted_metrics:
        raise ValueError(f"Keras model {keras_model.name!r}: weighted_metrics="
                         f"{weighted_metrics!r} are not supported (mlstm's compile takes "
                         "metrics only, which ignore sample weights as Keras' metrics do); "
                         "convert with compile=False")
    if loss is None:
        raise ValueError(f"Keras model {keras_model.name!r} was compiled without a loss")
    mloss: Any
    if isinstance(loss, dict):
        mloss = {name: loss_from_keras(spec, f"output {name!r}") for name, spec in loss.items()}
    elif isinstance(loss, (list, tuple)):
        names = model.output_names + [f"#{k}" for k in range(len(model.output_names), len(loss))]
        mloss = [loss_from_keras(spec, f"output {name!r}") for name, spec in zip(names, loss)]
    else:
        mloss = loss_from_keras(loss, "loss")
    if isinstance(loss_weights, (int, float)):
        loss_weights = [float(loss_weights)]
    elif isinstance(loss_weights, tuple):
        loss_weights = list(loss_weights)
    model.compile(optimizer=optimizer_from_keras(keras_model.optimizer), loss=mloss,
                  loss_weights=loss_weights,
                  metrics=metrics_from_keras(metrics, model.output_names))
    return model


def compile_keras_like(keras_model: Any, model: Model) -> Any:
    """Compile the Keras model with the mlstm ``model``'s losses, weights, metrics and
    optimizer."""
    losses = [loss_to_keras(loss, f"output {name!r}")
              for name, loss in zip(model.output_names, model._losses)]
    keras_model.compile(optimizer=optimizer_to_keras(model.optimizer),
                        loss=losses[0] if len(losses) == 1 else losses,
                        loss_weights=list(model._loss_weights),
                        metrics=metrics_to_keras(model))
    return keras_model
