"""The refusal of a constructor option a loss does not have (Keras-only options included)."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["refuse_unknown_options"]


def refuse_unknown_options(cls: type[Any], options: Mapping[str, Any]) -> None:
    """TypeError naming ``options`` (a dict of keyword arguments ``cls`` does not take) and
    listing the ones it does; nothing when ``options`` is empty."""
    if not options:
        return
    supported = [name for name in inspect.signature(cls.__init__).parameters
                 if name not in ("self", "unsupported")]
    raise TypeError(f"{cls.__name__}: option{'s' if len(options) > 1 else ''} "
                    f"{', '.join(f'{k}={v!r}' for k, v in options.items())} not supported; "
                    f"{cls.__name__} takes {supported}")
