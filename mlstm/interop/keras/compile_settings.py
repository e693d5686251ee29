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
    Not carried: they change no number that is trained or compared.
"""
from __future__ import annotations

import inspect

from .backend import import_keras

__all__ = ["loss_from_keras", "loss_to_keras", "optimizer_from_keras", "optimizer_to_keras",
           "keras_compile_args", "compile_like", "compile_keras_like"]


# --------------------------------------------------------------------------- losses
def _loss_classes():
    """Registered loss classes that declare a Keras class or function themselves."""
    from ...registry import LOSSES
    return [cls for cls in LOSSES.classes()
            if vars(cls).get("keras_name") or vars(cls).get("keras_function")]


def _supported_losses():
    return ", ".join(f"{cls.keras_name or '-'} / {cls.keras_function or '-'}"
                     for cls in _loss_classes())


def _parameters(cls):
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def loss_from_keras(spec, where):
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


def _loss_instance(cls, kloss, where):
    """``cls`` with the options of the Keras loss instance ``kloss``."""
    config = kloss.get_config()
    kind = type(kloss).__name__
    if config.get("reduction") != "sum_over_batch_size":
        raise ValueError(f"{where}: loss {config.get('name')!r} with reduction "
                         f"{config.get('reduction')!r} is not supported (only "
                         "'sum_over_batch_size', Keras' default)")
    mine, theirs = _parameters(cls), _parameters(type(kloss))
    options = {}
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


def loss_to_keras(loss, where):
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
    options = {}
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
def _optimizer_classes():
    """{Keras class name: mlstm optimizer class}: the registry once optimizers register
    themselves there, else mlstm.optimizers' Adam and SGD (named like Keras' classes)."""
    from ...registry import OPTIMIZERS
    classes = OPTIMIZERS.classes()
    if not classes:
        from ... import optimizers
        classes = [optimizers.Adam, optimizers.SGD]
    return {cls.__name__: cls for cls in classes}


def optimizer_from_keras(optimizer):
    """The mlstm optimizer with the Keras optimizer's configuration (fresh state): the one
    place that maps them is :func:`mlstm.optimizers.from_keras_object` (used by
    ``compile(optimizer=keras_object)`` too), which refuses by name what mlstm cannot map."""
    from ... import optimizers
    mapped = optimizers.from_keras_object(optimizer)
    if mapped is None:
        raise ValueError(f"optimizer {optimizer!r} is not a Keras optimizer")
    return mapped


def optimizer_to_keras(optimizer):
    """The Keras optimizer with the mlstm optimizer's configuration (fresh state)."""
    keras = import_keras()
    cls = type(optimizer)
    classes = _optimizer_classes()
    kcls = getattr(keras.optimizers, cls.__name__, None)
    if classes.get(cls.__name__) is not cls or kcls is None:
        raise ValueError(f"optimizer {cls.__name__} has no Keras translation (mlstm's "
                         f"{', '.join(sorted(classes))} have)")
    theirs = _parameters(kcls)
    options = {}
    for key, value in optimizer.get_config().items():
        if key == "name":
            continue
        if key not in theirs:
            raise ValueError(f"optimizer {cls.__name__}: option {key}={value!r} has no "
                             f"counterpart in keras.optimizers.{cls.__name__}")
        options[key] = value
    return kcls(**options)


# --------------------------------------------------------------------------- compile
def keras_compile_args(keras_model):
    """The loss and loss_weights the Keras model was compiled with (as given by the user)."""
    stored = getattr(keras_model, "_compile_config", None)
    config = getattr(stored, "config", None) or {}
    loss = config.get("loss", getattr(keras_model, "loss", None))
    return loss, config.get("loss_weights")


def compile_like(model, keras_model):
    """Compile the mlstm ``model`` with the Keras model's losses, loss weights and optimizer.

    Raises ValueError naming what has no mlstm translation (a custom loss, a schedule...).
    """
    loss, loss_weights = keras_compile_args(keras_model)
    if loss is None:
        raise ValueError(f"Keras model {keras_model.name!r} was compiled without a loss")
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
                  loss_weights=loss_weights)
    return model


def compile_keras_like(keras_model, model):
    """Compile the Keras model with the mlstm ``model``'s losses, weights and optimizer."""
    losses = [loss_to_keras(loss, f"output {name!r}")
              for name, loss in zip(model.output_names, model._losses)]
    keras_model.compile(optimizer=optimizer_to_keras(model.optimizer),
                        loss=losses[0] if len(losses) == 1 else losses,
                        loss_weights=list(model._loss_weights))
    return keras_model
