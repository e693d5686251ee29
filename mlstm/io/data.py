"""The data files of the command-line tools: a ``.npz`` of inputs and targets, read safely.

``python -m mlstm diagnose MODEL DATA.npz`` and ``crosscheck`` read arrays named after the
model's inputs and outputs. :func:`read_data_npz` reads them with the same care as a
model file: every ``.npy`` header is read and checked (a real dtype, the expected shape,
the total size against a limit, the compression ratio) before any data is inflated, so
a header that claims a shape of (10**12, 20, 8), or a zip bomb, costs nothing; a bare
``.npy`` gets a message saying how to make a ``.npz``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import limits
from .archive import Archive, NpyHeader

if TYPE_CHECKING:
    from .._typing import Array

__all__ = ["read_data_npz"]

_REAL_KINDS = "biuf"     # bool, int, uint, float: cast to the model's dtype later


def read_data_npz(path: str | os.PathLike[str], names: Sequence[str] | None = None,
                  shapes: Mapping[str, Sequence[int | None]] | None = None,
                  max_bytes: int | None = None) -> dict[str, Array]:
    """The arrays of a data ``.npz``, every header checked before any data is read.

    Parameters
    ----------
    path : str or os.PathLike
    names : list of str, optional
        The arrays to read (member names without ``.npy``); all of them when omitted.
    shapes : dict name -> tuple, optional
        The shape expected of an array, batch axis included, ``None`` for any size:
        ``{"x1": (None, 20, 8), "y1": (None, 1)}``. Checked from the header, before its
        data is read. Names not in the file are ignored here (``names`` says what must be
        there).
    max_bytes : int, optional
        The most bytes the arrays read may take in memory together;
        :data:`mlstm.io.limits.MAX_DATA_BYTES` (1 GiB) by default.

    Returns
    -------
    dict name -> ndarray
        In the order of ``names``, else of the file.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        A bare ``.npy``; not a zip; a member that is not a ``.npy`` array; a missing name;
        an object, string, complex or structured dtype; a shape other than expected; more
        than ``max_bytes`` in all; a member inflating beyond
        :data:`mlstm.io.limits.MAX_INFLATION`; a damaged or truncated member.
    """
    max_bytes = limits.MAX_DATA_BYTES if max_bytes is None else int(max_bytes)
    label = f"data file {os.fspath(path)!r}"
    with Archive(path, label, "a data file") as archive:
        members = archive.names()
        if names is None:
            others = [m for m in members if not m.endswith(".npy")]
            if others:
                raise ValueError(f"{label} holds {others[0]!r}, which is not a .npy array; a "
                                 "data file holds only arrays (np.savez)")
            names = [m[:-len(".npy")] for m in members]
        else:
            names = list(names)
            missing = [n for n in names if f"{n}.npy" not in members]
            if missing:
                raise ValueError(f"{label} has no array {missing[0]!r}; it holds "
                                 f"{sorted(m[:-4] for m in members if m.endswith('.npy'))}")
        headers: dict[str, NpyHeader] = {}
        total = 0
        for name in names:
            what = f"array {name!r}"
            header = archive.header(f"{name}.npy", what)
            if header.dtype.kind not in _REAL_KINDS or header.dtype.fields is not None:
                raise ValueError(f"{label}: {what} must hold real numbers (bool, int or "
                                 f"float), got dtype {header.dtype}")
            expected = (shapes or {}).get(name)
            if expected is not None and (
                    len(expected) != len(header.shape)
                    or any(e is not None and e != d for e, d in zip(expected, header.shape))):
                raise ValueError(f"{label}: {what} has shape {header.shape} (from its header), "
                                 f"expected {_format(expected)}")
            total += header.nbytes
            if total > max_bytes:
                raise ValueError(
                    f"{label}: {what} claims shape {header.shape} {header.dtype.name} "
                    f"({limits.format_bytes(header.nbytes)}); the arrays would take "
                    f"{limits.format_bytes(total)}, beyond {limits.format_bytes(max_bytes)} "
                    "(mlstm.io.limits.MAX_DATA_BYTES); refused before reading. Pass "
                    "max_bytes=... or raise the limit if the data is yours")
            archive.check_size(f"{name}.npy", header, what)
            headers[name] = header
        return {name: archive.read_array(f"{name}.npy", header, f"array {name!r}")
                for name, header in headers.items()}


def _format(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if k == 0 and d is None else ("any" if d is None else str(d))
                           for k, d in enumerate(shape)) + (",)" if len(shape) == 1 else ")")
