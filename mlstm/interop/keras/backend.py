"""Importing Keras quietly, and running it in one float dtype.

TensorFlow 2.21 prints notices on stderr while it is imported (``WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR`` and an ``I... port.cc]
oneDNN custom operations are on`` line, twice): its C++ logging writes them before
``TF_CPP_MIN_LOG_LEVEL`` is read, so that variable alone does not silence them. The first
import therefore runs with the process's stderr (file descriptor 2) captured; afterwards
every captured line is written back except those informational notices, so warnings and
errors still show.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Any, Iterator

__all__ = ["import_keras", "import_tensorflow", "keras_dtype", "is_keras_model",
           "silence_tensorflow_logging"]

# absl's informational lines (severity I) and its note about logging before InitializeLog.
_NOTICE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                     r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] )")


def import_keras() -> Any:
    """keras, imported with TensorFlow's start-up notices filtered out (see the module
    docstring); ImportError naming the extra to install when it is missing."""
    if sys.modules.get("keras") is None:      # absent, or blocked (None): import it
        # 2: no INFO or WARNING lines from TensorFlow's C++ side (e.g. the CPU feature note)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("", "0")
        with _stderr_notices_filtered(enabled=quiet and "tensorflow" not in sys.modules):
            try:
                import keras  # noqa: F401
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("mlstm.interop.keras needs Keras 3 with TensorFlow: pip "
                                  "install 'mlstm[keras]' (tensorflow-cpu==2.21.0, "
                                  "keras==3.15.1)") from exc
    import keras
    return keras


@contextlib.contextmanager
def _stderr_notices_filtered(enabled: bool = True) -> Iterator[None]:
    """Capture file descriptor 2 for the block, then write back all but absl's notices."""
    if not enabled:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        _flush_stderr()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(True)
                    if not _NOTICE.match(line)]
            if kept:
                os.write(2, "".join(kept).encode())


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):      # replaced or closed stderr
        pass


def import_tensorflow() -> tuple[Any, Any]:
    """(keras, tensorflow); RuntimeError when Keras runs on another backend."""
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"crosscheck needs the TensorFlow backend of Keras (it uses "
                           f"tf.GradientTape); KERAS_BACKEND is {keras.backend.backend()!r}")
    import tensorflow as tf
    return keras, tf


def silence_tensorflow_logging() -> None:
    """Only errors from TensorFlow's Python loggers (absl and ``tensorflow``): for the
    command line, whose output is the report. A library call leaves logging alone."""
    import logging

    import_keras()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def keras_dtype(dtype: Any) -> Iterator[None]:
    """Run Keras in ``dtype`` for the block: ``floatx`` and the global dtype policy.

    Both are needed: Keras fixes its global dtype policy from ``floatx`` when the first
    layer of the process is created, so ``set_floatx`` alone leaves later layers (those
    given no dtype) in float32; and ``floatx`` itself decides the dtype of the compiled
    loss's trackers and of the arrays ``fit``/``predict`` feed the model (its data adapter
    casts float inputs to ``floatx``). Both are restored on exit, even on error.
    """
    keras = import_keras()
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


def is_keras_model(obj: object) -> bool:
    """Whether ``obj`` is a keras.Model (without importing Keras when it is not loaded)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)
