"""Keras' arguments to fit / evaluate / predict: which mlstm takes, and their checks.

Any other keyword is a ValueError that lists the ones taken (Python's own TypeError would
not say what to write instead); a Keras argument that has no meaning for in-memory arrays
says why.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["refuse_unknown", "check_verbose", "check_missing_targets", "check_validation_freq",
           "check_validation_split", "check_steps_per_epoch", "resolve_batch_size",
           "check_batch_size", "FIT_ARGUMENTS", "EVALUATE_ARGUMENTS", "PREDICT_ARGUMENTS"]

FIT_ARGUMENTS = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
                 "validation_data", "shuffle", "class_weight", "sample_weight",
                 "initial_epoch", "steps_per_epoch", "validation_batch_size",
                 "validation_freq", "seed", "trace", "checkpoint", "missing_targets")
EVALUATE_ARGUMENTS = ("x", "y", "batch_size", "verbose", "sample_weight", "callbacks",
                      "return_dict", "missing_targets")
PREDICT_ARGUMENTS = ("x", "batch_size", "verbose", "callbacks")

#: Keras arguments mlstm does not take, and why.
_NOT_TAKEN = {
    "validation_steps": "validation runs over all of validation_data (in-memory arrays); "
                        "pass fewer samples to validate on fewer",
    "steps": "evaluate and predict run over all of x (in-memory arrays); pass fewer samples",
    "use_multiprocessing": "mlstm reads in-memory arrays, there is no data loader",
    "workers": "mlstm reads in-memory arrays, there is no data loader",
    "max_queue_size": "mlstm reads in-memory arrays, there is no data loader",
}


def refuse_unknown(method: str, unknown: Mapping[str, Any] | Collection[str],
                   taken: Sequence[str]) -> None:
    """ValueError for keywords ``method`` does not take, listing the ones it does."""
    if not unknown:
        return
    reasons = [f"{name} ({_NOT_TAKEN[name]})" for name in unknown if name in _NOT_TAKEN]
    raise ValueError(f"{method}() does not take {sorted(unknown)}"
                     + (f": {'; '.join(reasons)}" if reasons else "")
                     + f". It takes: {', '.join(taken)}")


def check_verbose(verbose: int | str, method: str) -> int:
    """Keras' verbose: "auto" means 1; 0 silent, 1 a progress bar, 2 one line."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{method}: verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def check_missing_targets(missing_targets: object, method: str) -> bool:
    """None (NaN in a target is an error) or "mask" (NaN rows are missing labels)."""
    if missing_targets not in (None, "mask"):
        raise ValueError(f"{method}: missing_targets must be None (NaN targets are an error) "
                         f"or 'mask' (a NaN target row is a missing label), got "
                         f"{missing_targets!r}")
    return missing_targets == "mask"


def check_validation_freq(validation_freq: int | Sequence[int]) -> int | list[int]:
    """An int >= 1 (every n-th epoch) or a list of 1-based epochs (Keras)."""
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"fit: validation_freq must be >= 1, got {validation_freq}")
        return int(validation_freq)
    if isinstance(validation_freq, (list, tuple)) and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= 1
            for e in validation_freq):
        return [int(e) for e in validation_freq]
    raise ValueError("fit: validation_freq must be an int >= 1 (validate every n epochs) or "
                     f"a list of 1-based epochs, got {validation_freq!r}")


def should_validate(epoch: int, validation_freq: int | list[int]) -> bool:
    """Keras' rule, with the user-facing 1-based epoch."""
    if isinstance(validation_freq, list):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def check_validation_split(validation_split: float, n: int, has_validation_data: bool) -> int:
    """The index the training part ends at: Keras' ``floor(n · (1 - split))``."""
    if isinstance(validation_split, bool) or not isinstance(
            validation_split, (int, float, np.integer, np.floating)) \
            or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be a number in [0, 1), got "
                         f"{validation_split!r}")
    if has_validation_data:
        raise ValueError("fit: give validation_split or validation_data, not both (Keras "
                         "ignores validation_split then)")
    at = int(math.floor(n * (1.0 - validation_split)))
    if at == 0 or at == n:
        raise ValueError(f"fit: {n} samples cannot be split into training and validation "
                         f"parts with validation_split={validation_split}")
    return at


def check_batch_size(batch_size: int) -> int:
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def resolve_batch_size(batch_size: int | None, n: int, steps_per_epoch: int | None = None) -> int:
    """Keras' default: 32, or ``ceil(n / steps_per_epoch)`` when only the steps are given."""
    if batch_size is None:
        return int(math.ceil(n / steps_per_epoch)) if steps_per_epoch else 32
    return check_batch_size(batch_size)


def check_steps_per_epoch(steps_per_epoch: int | None, batches: int) -> int | None:
    """None (one pass over the data per epoch) or an int in [1, batches]."""
    if steps_per_epoch is None:
        return None
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, (int, np.integer)) \
            or steps_per_epoch < 1:
        raise ValueError(f"fit: steps_per_epoch must be a positive int, got "
                         f"{steps_per_epoch!r}")
    if steps_per_epoch > batches:
        raise ValueError(f"fit: steps_per_epoch={steps_per_epoch} is more than the {batches} "
                         "batches the data holds (Keras would stop each epoch early with a "
                         "warning); use at most that many, or a smaller batch_size")
    return int(steps_per_epoch)
