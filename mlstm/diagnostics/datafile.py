"""The command line's data file: a ``.npz`` of inputs and targets, checked before it is read.

Arrays are found by the model's input and output names, else as ``x0, x1, ...`` and
``y0, y1, ...`` in order, else as ``x`` and ``y`` for one of each. Every array's ``.npy``
header (shape and dtype) is read and checked against the model's inputs before any array is
inflated, so a file that does not fit is refused in one line without reading its data.
Nothing is unpickled (``allow_pickle=False``).
"""
from __future__ import annotations

import os
import zipfile
from typing import Callable, Sequence

import numpy as np

from .._typing import Array

__all__ = ["load_arrays", "check_readable_file", "check_npz_file"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
#: ``{array name: (shape, dtype)}`` read from the ``.npy`` headers of a ``.npz``.
Headers = dict[str, tuple[tuple[int, ...], np.dtype]]
#: dtype kinds an input or target may have: bool, signed and unsigned integers, floats.
_NUMERIC_KINDS = "biuf"


def check_readable_file(path: str | os.PathLike[str], what: str) -> bytes:
    """ValueError naming ``path`` unless it is an existing, readable file; returns its first
    bytes (to tell a zip archive from a bare ``.npy``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{what} {path!r}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory, not a file")
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError as exc:
        raise ValueError(f"{what} {path!r} cannot be read: {exc.strerror or exc}") from None


def check_npz_file(path: str | os.PathLike[str]) -> None:
    """ValueError naming ``path`` unless it is a readable ``.npz`` archive (a bare ``.npy``
    gets its own message); reads only the first bytes."""
    head = check_readable_file(path, "data file")
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"data file {os.fspath(path)!r} is a single .npy array; give a .npz "
                         "holding the inputs and the targets, e.g. np.savez('data.npz', x=x, "
                         "y=y), with arrays named like the model's inputs and outputs or "
                         "x0, x1, ... and y0, y1, ...")
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(f"data file {os.fspath(path)!r} is not a .npz archive (written by "
                         "np.savez or np.savez_compressed)")


def load_arrays(path: str | os.PathLike[str], input_names: Sequence[str],
                output_names: Sequence[str],
                input_shapes: Sequence[tuple[int | None, ...]] | None = None,
                before_reading: Callable[[list[tuple[int, ...]]], None] | None = None
                ) -> tuple[list[Array], list[Array]]:
    """Inputs and targets from a ``.npz`` (no pickle): by name, else x0.. / y0.., else x / y.

    Parameters
    ----------
    path : str or os.PathLike
    input_names, output_names : list of str
        The model's inputs and outputs, in order.
    input_shapes : list of tuple, optional
        Each input's shape without the batch axis (None for a free dimension): checked
        against the arrays' headers before they are read.
    before_reading : callable, optional
        Called with the inputs' shapes from their headers (batch axis first, in the model's
        input order) once the headers are checked and before any array is read; its
        ValueError refuses the file (the command's memory check, :mod:`mlstm.io.memory`).

    Returns
    -------
    xs, ys : list of ndarray
        In the model's input and output order.

    Raises
    ------
    ValueError
        One line naming the file, the array and what was expected: a missing or unreadable
        file, a bare ``.npy``, arrays not found, a non-numeric dtype, a shape that does not
        fit the model, or sample counts that differ.
    """
    check_npz_file(path)
    try:
        headers = _npz_headers(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"data file {os.fspath(path)!r} is damaged: {exc}") from None
    x_keys = _pick(headers, input_names, "x", "inputs", path)
    y_keys = _pick(headers, output_names, "y", "targets", path)
    _check_headers(path, headers, x_keys, y_keys, input_names, input_shapes)
    if before_reading is not None:
        before_reading([headers[k][0] for k in x_keys])
    try:
        with np.load(path, allow_pickle=False) as data:
            return [data[k] for k in x_keys], [data[k] for k in y_keys]
    except MemoryError:
        raise ValueError(f"data file {os.fspath(path)!r}: its arrays do not fit in memory "
                         f"({_describe(headers, x_keys + y_keys)})") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"data file {os.fspath(path)!r} cannot be read: {exc}") from None


def _npz_headers(path: str | os.PathLike[str]) -> Headers:
    """``{array name: (shape, dtype)}`` from the ``.npy`` headers inside a ``.npz``."""
    out: Headers = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise OSError(f"array {member[:-4]!r} has .npy format version {version}; "
                                  "1.0 and 2.0 are read")
            out[member[:-4]] = (tuple(shape), dtype)
    return out


def _pick(headers: Headers, names: Sequence[str], prefix: str, role: str,
          path: str | os.PathLike[str]) -> list[str]:
    """The array names holding ``role`` (``names``, else ``prefix0..``, else ``prefix``)."""
    if all(n in headers for n in names):
        return list(names)
    numbered = [f"{prefix}{k}" for k in range(len(names))]
    if all(n in headers for n in numbered):
        return numbered
    if len(names) == 1 and prefix in headers:
        return [prefix]
    raise ValueError(f"{os.fspath(path)}: no {role} found; expected arrays named {list(names)} "
                     f"or {numbered}" + (f" or {prefix!r}" if len(names) == 1 else "")
                     + f"; the file holds {sorted(headers)}")


def _check_headers(path: str | os.PathLike[str], headers: Headers, x_keys: list[str],
                   y_keys: list[str],
                   input_names: Sequence[str],
                   input_shapes: Sequence[tuple[int | None, ...]] | None) -> None:
    where = os.fspath(path)
    for key in x_keys + y_keys:
        shape, dtype = headers[key]
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{where}: array {key!r} has dtype {dtype}; inputs and targets "
                             "must be numbers (bool, int or float)")
        if len(shape) == 0:
            raise ValueError(f"{where}: array {key!r} is a scalar; inputs and targets have a "
                             "batch axis first")
    if input_shapes is not None:
        for key, name, expected in zip(x_keys, input_names, input_shapes):
            shape = headers[key][0]
            fits = len(shape) == len(expected) + 1 and all(
                e is None or e == s for e, s in zip(expected, shape[1:]))
            if not fits:
                want = "(N, " + ", ".join("any" if e is None else str(e) for e in expected) + ")"
                raise ValueError(f"{where}: array {key!r} has shape {shape}, but the model's "
                                 f"input {name!r} takes {want}")
    counts = {key: headers[key][0][0] for key in x_keys + y_keys}
    if len(set(counts.values())) > 1:
        raise ValueError(f"{where}: the arrays hold different numbers of samples (first axis): "
                         + ", ".join(f"{k} {n}" for k, n in counts.items()))


def _describe(headers: Headers, keys: list[str]) -> str:
    return ", ".join(f"{k} {headers[k][0]} {headers[k][1]}" for k in keys)
