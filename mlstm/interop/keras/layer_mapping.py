"""One Keras layer <-> one mlstm layer, through the layer registry.

The interop keeps no table of layers: a registered mlstm layer class that declares
``keras_name`` (the Keras class) and ``keras_options`` (:class:`mlstm.layers.KerasOptions`)
is importable and exportable. Its Keras config maps option by option:

===============  =====================================================================
``copied``       passed to the mlstm constructor unchanged (which validates them)
``fixed``        accepted only at the value shown (anything else is refused, naming it)
``initializers`` mapped to mlstm's initializer names (the weights themselves are copied)
``ignored``      change no number mlstm computes
``name``, ``trainable``, ``dtype``: always carried
===============  =====================================================================

Any other option in the Keras config is refused, so that an option added by a later Keras
cannot slip through unnoticed. Only the class that declares ``keras_name`` itself maps: a
subclass (of the mlstm or of the Keras class) computes something else until it says
otherwise.
"""
from __future__ import annotations

import inspect
import re
import warnings
from typing import TYPE_CHECKING, Any, Collection

from .backend import import_keras

if TYPE_CHECKING:
    from ...layers import Layer

__all__ = ["supported_keras_layers", "mlstm_layer_class", "layer_from_keras", "keras_layer",
           "layer_dtype", "refusal", "copy_weights", "zero_dropout_rates"]

#: Carried for every layer, outside ``keras_options``.
ALWAYS_CARRIED = ("name", "trainable", "dtype")


def _declared_keras_name(cls: type) -> str | None:
    """The Keras class the mlstm class itself declares (not one inherited from a parent)."""
    return vars(cls).get("keras_name")


def _layer_classes() -> list[type[Layer]]:
    from ...registry import LAYERS
    return [cls for cls in LAYERS.classes() if _declared_keras_name(cls)]


def supported_keras_layers() -> list[str]:
    """Sorted names of the Keras layer classes mlstm converts (read from the registry)."""
    return sorted({name for cls in _layer_classes() if (name := _declared_keras_name(cls))})


def _supported_text() -> str:
    return f"Supported Keras layers: {', '.join(supported_keras_layers())} (see docs/keras.md)"


def refusal(layer: Any, option: str, value: object, why: str = "") -> ValueError:
    """ValueError naming the layer (Keras' or mlstm's) and the option it cannot carry."""
    return ValueError(f"{type(layer).__name__} {layer.name!r}: option {option}={value!r} is "
                      f"not supported by mlstm{': ' + why if why else ''} (see docs/keras.md)")


def mlstm_layer_class(klayer: Any) -> type[Layer]:
    """The registered mlstm class of a Keras layer; ValueError listing the supported ones."""
    from ...registry import LAYERS

    keras = import_keras()
    name = type(klayer).__name__
    matches = [cls for cls in LAYERS.by_attribute("keras_name", name)
               if _declared_keras_name(cls) == name]
    if not matches or type(klayer) is not getattr(keras.layers, name, None):
        kind = ("a nested model" if isinstance(klayer, keras.Model)
                else "a custom layer" if matches else f"layer class {name}")
        raise ValueError(f"Layer {klayer.name!r} ({name}) is {kind}, which mlstm does not "
                         f"support. {_supported_text()}")
    if len(matches) > 1:
        raise ValueError(f"Layer {klayer.name!r} ({name}): several registered mlstm layers "
                         f"declare keras_name {name!r}: "
                         f"{', '.join(c.__qualname__ for c in matches)}")
    return matches[0]


def layer_dtype(klayer: Any) -> str:
    """The Keras layer's compute dtype, float32 or float64 (refused otherwise)."""
    policy = klayer.dtype_policy
    if policy.compute_dtype != policy.variable_dtype or policy.compute_dtype not in (
            "float32", "float64"):
        raise refusal(klayer, "dtype", policy.name, "mlstm computes in float32 or float64 only")
    return policy.compute_dtype


def _accepts(cls: Any, option: str) -> bool:
    """Whether ``cls(...)`` takes keyword ``option`` (by name or through ``**kwargs``)."""
    parameters = inspect.signature(cls).parameters.values()
    return any(p.name == option or p.kind is p.VAR_KEYWORD for p in parameters)


def _default(cls: Any, option: str) -> Any:
    parameter = inspect.signature(cls).parameters.get(option)
    return None if parameter is None else parameter.default


#: Keras initializer classes whose mlstm name is not their snake-case name: Keras'
#: ``RandomUniform()`` (Embedding's default, U(-0.05, 0.05)) is mlstm's ``"uniform"`` (and
#: Keras' own alias ``"uniform"`` is that class). Mapped only at Keras' default options.
_KERAS_INITIALIZER_NAMES = {"RandomUniform": "uniform"}


def _initializer_name(klayer: Any, cls: type[Layer], option: str, spec: Any) -> str:
    """mlstm initializer name for a serialized Keras initializer (with a warning, the mlstm
    default when mlstm has no such initializer: the weights are copied anyway)."""
    from ...initializers import INITIALIZERS

    keras = import_keras()
    if isinstance(spec, str) and spec in INITIALIZERS:
        return spec
    if isinstance(spec, dict):
        class_name = spec.get("class_name", "")
        name = _KERAS_INITIALIZER_NAMES.get(
            class_name, re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower())  # GlorotUniform
        kcls = getattr(keras.initializers, class_name, None)
        config = {k: v for k, v in (spec.get("config") or {}).items() if k != "seed"}
        if name in INITIALIZERS and kcls is not None and all(
                value == _default(kcls, key) for key, value in config.items()):
            return name
    default = _default(cls, option)
    if not isinstance(default, str):
        raise refusal(klayer, option, spec, "mlstm has no such initializer")
    warnings.warn(f"{type(klayer).__name__} {klayer.name!r}: {option} {spec!r} has no mlstm "
                  f"equivalent; the weights are copied, and {default!r} would be used only if "
                  "the mlstm model were re-initialized", stacklevel=5)
    return default


def _construct(cls: type[Layer], klayer: Any, options: dict[str, Any],
               carried: dict[str, Any]) -> Layer:
    """``cls(**options, **carried)``; when the mlstm constructor refuses, the refusal names
    the options it refuses (each tried alone beside the required ones)."""
    try:
        return cls(**options, **carried)
    except (ValueError, TypeError) as exc:
        error = exc
    parameters = inspect.signature(cls).parameters
    required = {k: v for k, v in options.items()
                if parameters.get(k) is not None
                and parameters[k].default is inspect.Parameter.empty}
    culprits: list[str] = []
    for key, value in options.items():
        if key in required:
            continue
        try:
            cls(**required, **{key: value}, **carried)
        except (ValueError, TypeError):
            culprits.append(key)
    culprits = culprits or list(required) or list(options)
    option = ", ".join(f"{k}={options[k]!r}" for k in culprits[:-1])
    last = culprits[-1]
    raise ValueError(f"{type(klayer).__name__} {klayer.name!r}: option "
                     f"{option + ', ' if option else ''}{last}={options[last]!r} is not "
                     f"supported by mlstm: {error} (see docs/keras.md)") from None


def layer_from_keras(klayer: Any, set_by_wrapper: Collection[str] = ()) -> Layer:
    """An unbuilt mlstm layer with the same options as the Keras layer ``klayer``.

    A wrapper's layers (``KerasOptions.wrapped``) are converted the same way and passed as
    its options; ``set_by_wrapper`` names options of a wrapped layer that its wrapper sets
    itself (``KerasOptions.wrapped_ignored``), accepted at any value.
    """
    cls = mlstm_layer_class(klayer)
    spec = cls.keras_options
    config = klayer.get_config()
    for key, value in config.items():
        if key in ALWAYS_CARRIED or key in spec.ignored or key in spec.copied \
                or key in spec.initializers or key in spec.wrapped or key in set_by_wrapper:
            continue
        if key not in spec.fixed:
            raise refusal(klayer, key, value, "mlstm does not know this option")
        if value != spec.fixed[key]:
            why = spec.reasons.get(key)
            raise refusal(klayer, key, value,
                          f"only {spec.fixed[key]!r} is" + (f"; {why}" if why else ""))
    # Options that live on the layer object rather than in its config (any Keras layer).
    if getattr(klayer, "activity_regularizer", None) is not None:
        raise refusal(klayer, "activity_regularizer", klayer.activity_regularizer)
    if getattr(klayer, "lora_enabled", False):
        raise refusal(klayer, "lora_rank", getattr(klayer, "lora_rank", None))
    if getattr(klayer, "quantization_mode", None) is not None:
        raise refusal(klayer, "quantization_mode", klayer.quantization_mode)
    options = {key: config[key] for key in spec.copied if key in config}
    for key in spec.initializers:
        if key in config:
            options[key] = _initializer_name(klayer, cls, key, config[key])
    for key, attribute in spec.wrapped.items():
        options[key] = layer_from_keras(getattr(klayer, attribute), spec.wrapped_ignored)
    carried: dict[str, Any] = {"name": klayer.name, "dtype": layer_dtype(klayer)}
    if "trainable" in inspect.signature(cls).parameters:
        carried["trainable"] = bool(klayer.trainable)
    layer = _construct(cls, klayer, options, carried)
    layer.trainable = bool(klayer.trainable)
    return layer


def keras_layer(layer: Layer) -> Any:
    """An unbuilt Keras layer with the options of the mlstm ``layer``, in its dtype."""
    keras = import_keras()
    cls = type(layer)
    name = _declared_keras_name(cls)
    if name is None:
        raise ValueError(f"Layer {layer.name!r} ({cls.__name__}) has no Keras counterpart "
                         f"(its class declares no keras_name). {_supported_text()}")
    kcls = getattr(keras.layers, name, None)
    if kcls is None:
        raise ValueError(f"Layer {layer.name!r} ({cls.__name__}) declares keras_name "
                         f"{name!r}, which keras.layers {keras.__version__} does not have")
    spec = cls.keras_options
    # The fixed values are passed too, so that Keras computes what mlstm does whatever its
    # own global settings (e.g. image_data_format) say.
    kwargs: dict[str, Any] = dict(spec.fixed, name=layer.name, dtype=layer.dtype)
    if _accepts(kcls, "trainable"):       # SpatialDropout1D's constructor does not take it
        kwargs["trainable"] = layer.trainable
    for key, value in layer.get_config().items():
        if key in ALWAYS_CARRIED or key in spec.ignored or key == "seed":
            continue
        if key in spec.wrapped:
            kwargs[key] = keras_layer(getattr(layer, spec.wrapped[key]))
        elif key in spec.copied:
            kwargs[key] = value
        elif key in spec.initializers:
            if isinstance(value, str):     # else Keras' default: the weights are copied
                kwargs[key] = value
        else:
            raise ValueError(f"{cls.__name__} {layer.name!r}: option {key}={value!r} has no "
                             f"Keras counterpart in {name} (not in {cls.__name__}.keras_options)")
    return kcls(**kwargs)


def copy_weights(source: Any, target: Any) -> None:
    """Set each layer of ``target`` that has weights from the layer of the same name in
    ``source``; either model may be mlstm's or Keras' (same layer names, same weight order)."""
    for layer in source.layers:
        weights = layer.get_weights()
        if weights:
            target.get_layer(layer.name).set_weights(weights)


def zero_dropout_rates(config: dict[str, Any]) -> list[str]:
    """Set every dropout rate in a Keras model (or layer) config to 0, in place.

    The rates are the options the mlstm class of each layer declares as
    ``KerasOptions.dropout_rates``; wrapped layers' configs (``KerasOptions.wrapped``) are
    walked too. Returns ``["layer: option=rate", ...]`` for the rates that were not 0.
    """
    from ...registry import LAYERS

    zeroed: list[str] = []

    def walk(entry: Any, owner: str = "") -> None:
        if not isinstance(entry, dict):
            return
        layer_config = entry.get("config")
        matches = [cls for cls in LAYERS.by_attribute("keras_name", entry.get("class_name"))
                   if _declared_keras_name(cls) == entry.get("class_name")]
        if isinstance(layer_config, dict) and len(matches) == 1:
            spec = matches[0].keras_options
            name = owner + str(layer_config.get("name"))
            for option in spec.dropout_rates:
                if layer_config.get(option):
                    zeroed.append(f"{name}: {option}={layer_config[option]!r}")
                    layer_config[option] = 0.0
            for option in spec.wrapped:
                walk(layer_config.get(option), owner=name + "/")

    for layer in config.get("layers", []):
        walk(layer)
    return zeroed
