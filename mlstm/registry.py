"""One registry for each kind of component: layers, losses, optimizers, activations, metrics.

A component is one class in one file. The file registers the class with a decorator::

    @register_layer
    class Scale(Layer):
        ...

and every part of mlstm that needs to find a component by name (``Model.from_config``,
``load_model``, the Keras import and export, ``compile(loss="mse")``, the parametrized
tests over all components) asks the registry, never a list of its own.

This module imports nothing from mlstm, so that any module may import it. The built-in
components register themselves when ``mlstm`` is imported (``mlstm/__init__.py`` imports
the packages that hold them).

>>> reg = Registry("widget")
>>> @reg.register(aliases=("w",))
... class Widget:
...     pass
>>> reg.get("w") is Widget, "Widget" in reg
(True, True)
>>> reg.get("gadget")
Traceback (most recent call last):
...
ValueError: Unknown widget 'gadget'; registered widgets: Widget, w
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

__all__ = ["Registry", "LAYERS", "LOSSES", "OPTIMIZERS", "ACTIVATIONS", "METRICS",
           "register_layer", "register_loss", "register_optimizer", "register_activation",
           "register_metric", "MODELS", "register_model"]

#: A component: a class (layers, losses, ...) or a function (metrics).
T = TypeVar("T", bound=Callable[..., Any])


class Registry:
    """Name -> class for one kind of component.

    Parameters
    ----------
    kind : str
        What the components are ("layer", "loss", ...), for messages.

    Notes
    -----
    A class is registered under its ``registered_name`` attribute when it has one, else under
    its class name, plus any ``aliases``. Registering a different class under a taken name
    is an error (a user's ``Dense`` must not silently replace the built-in one); registering
    the same class again is allowed, so that reloading a module is harmless.
    """

    def __init__(self, kind: str, plural: str | None = None, hint: str = "") -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self.hint = hint
        self._classes: dict[str, Any] = {}            # canonical name -> class
        self._aliases: dict[str, str] = {}            # alias -> canonical name

    @overload
    def register(self, cls: T, *, name: str | None = None, aliases: Sequence[str] = ()) -> T: ...
    @overload
    def register(self, cls: None = None, *, name: str | None = None,
                 aliases: Sequence[str] = ()) -> Callable[[T], T]: ...
    def register(self, cls: T | None = None, *, name: str | None = None,
                 aliases: Sequence[str] = ()) -> T | Callable[[T], T]:
        """Register ``cls``; usable as ``@reg.register`` or ``@reg.register(name=..., aliases=...)``."""
        def add(cls: T) -> T:
            # the class's own attribute only: a subclass does not inherit its parent's name
            canonical = name or vars(cls).get("registered_name") or cls.__name__
            if not isinstance(canonical, str) or not canonical:
                raise TypeError(f"{self.kind} name must be a non-empty string, got {canonical!r}")
            for key in (canonical, *aliases):
                taken = self._lookup(key)
                if taken is not None and _qualname(taken) != _qualname(cls):
                    raise ValueError(f"{self.kind} name {key!r} is already registered to "
                                     f"{_qualname(taken)}; choose another name for "
                                     f"{_qualname(cls)}")
            self._classes[canonical] = cls
            for alias in aliases:
                self._aliases[alias] = canonical
            cls.registered_name = canonical  # type: ignore[attr-defined]  # (any class)
            return cls

        return add if cls is None else add(cls)

    def _lookup(self, key: Any) -> Any:
        if key in self._classes:
            return self._classes[key]
        if key in self._aliases:
            return self._classes[self._aliases[key]]
        return None

    def get(self, key: Any) -> Any:
        """The class registered under ``key`` (a name or an alias); ValueError listing the
        registered names otherwise."""
        cls = self._lookup(key) if isinstance(key, str) else None
        if cls is None:
            raise ValueError(f"Unknown {self.kind} {key!r}; registered {self.plural}: "
                             f"{', '.join(self.names(aliases=True))}{self.hint}")
        return cls

    def names(self, aliases: bool = False) -> list[str]:
        """Sorted registered names (with the aliases too when ``aliases``)."""
        keys = set(self._classes)
        if aliases:
            keys |= set(self._aliases)
        return sorted(keys)

    def classes(self) -> list[Any]:
        """The registered classes, in registration order."""
        return list(self._classes.values())

    values = classes          # dict-like reading: ``{cls.__name__: cls for cls in reg.values()}``

    def by_attribute(self, attribute: str, value: Any) -> list[Any]:
        """The registered classes whose ``attribute`` equals ``value`` (e.g. ``keras_name``)."""
        return [cls for cls in self._classes.values() if getattr(cls, attribute, None) == value]

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"<Registry of {len(self._classes)} {self.plural}: {', '.join(self.names())}>"


def _qualname(cls: object) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"


LAYERS = Registry("layer", hint=" (a layer class of your own must be registered with "
                                "@mlstm.register_layer to be rebuilt from a config)")
LOSSES = Registry("loss", plural="losses")
OPTIMIZERS = Registry("optimizer")
ACTIVATIONS = Registry("activation")
METRICS = Registry("metric")
#: Model classes, so that a checkpoint names the class to rebuild without the loader
#: importing the model module (which would close an import cycle through training).
MODELS = Registry("model")

register_layer = LAYERS.register
register_loss = LOSSES.register
register_optimizer = OPTIMIZERS.register
register_activation = ACTIVATIONS.register
register_metric = METRICS.register
register_model = MODELS.register
