"""Read a ``.npz`` (zip) archive without trusting it: sizes and headers before data.

Every read here is bounded by a size known before it starts:

* a text member (``mlstm.json``) by its size in the zip directory and a read of at most
  the limit plus one byte (the directory can lie; the read cannot);
* an array member by its ``.npy`` header, read alone (at most 10,000 bytes, NumPy's own
  bound) and checked by the caller, shape and dtype, before a byte of data is read; the
  member must then hold exactly the bytes the header announces;
* a compressed member larger than :data:`~mlstm.io.limits.INFLATION_FLOOR` may inflate at
  most :data:`~mlstm.io.limits.MAX_INFLATION` times (a zip bomb is refused unread).

Nothing is unpickled: an object dtype in a header is refused before the data is touched.
Any damage the zip or zlib layers find (bad CRC, truncation, an unknown compression
method) becomes a ``ValueError`` naming the file and the member.
"""
from __future__ import annotations

import io
import os
import zipfile
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import numpy as np

from . import limits

if TYPE_CHECKING:
    from .._typing import Array, Shape

__all__ = ["Archive", "NpyHeader", "NPY_MAGIC"]

NPY_MAGIC = b"\x93NUMPY"
_HEADER_LIMIT = 10000          # NumPy's max_header_size default
_CHUNK = 1 << 20               # data is read into its array this much at a time


class NpyHeader:
    """What a ``.npy`` header announces: ``shape``, ``dtype``, ``fortran_order``, ``offset``
    (the header's length in bytes) and ``nbytes`` (the data's)."""

    def __init__(self, shape: Shape, dtype: np.dtype[Any], fortran_order: bool,
                 offset: int) -> None:
        self.shape, self.dtype = tuple(shape), dtype
        self.fortran_order, self.offset = fortran_order, offset
        count = 1
        for d in self.shape:
            count *= int(d)
        self.nbytes = count * dtype.itemsize      # a Python int: no overflow

    def __repr__(self) -> str:
        return f"NpyHeader(shape={self.shape}, dtype={self.dtype.str})"


class Archive:
    """An opened zip, read only through bounded, checked calls. A context manager.

    Parameters
    ----------
    path : str or os.PathLike
    label : str
        Starts every message, e.g. ``"load_model: 'model.npz'"``.
    kind : str
        What the file should be, for the message about a file that is not a zip.
    """

    def __init__(self, path: str | os.PathLike[str], label: str, kind: str) -> None:
        self.path, self.label = os.fspath(path), label
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{label}: there is no file at this path")
        if os.path.isdir(self.path):
            raise ValueError(f"{label} is a directory, not {kind}")
        try:
            with open(self.path, "rb") as f:
                start = f.read(len(NPY_MAGIC))
        except OSError as exc:
            raise ValueError(f"{label} cannot be read: {exc}") from None
        if start == NPY_MAGIC:
            raise ValueError(f"{label} is a bare .npy array, not {kind} (a .npz zip archive "
                             "of named arrays); write one with np.savez(path, name=array, ...)")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except Exception as exc:    # BadZipFile, OSError, ValueError, struct errors...
            raise ValueError(f"{label} is not {kind} (not a .npz/zip archive; truncated or "
                             f"foreign: {type(exc).__name__}: {exc})") from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False

    def close(self) -> None:
        self.zip.close()

    # ------------------------------------------------------------------ members
    def names(self) -> list[str]:
        return self.zip.namelist()

    def info(self, member: str, what: str) -> zipfile.ZipInfo:
        """The zip directory entry of ``member``; ValueError naming ``what`` when missing."""
        try:
            return self.zip.getinfo(member)
        except KeyError:
            raise ValueError(f"{self.label}: {what} ({member}) is missing") from None

    def check_inflation(self, info: zipfile.ZipInfo, what: str) -> None:
        """Refuse a member that inflates more than MAX_INFLATION times (a zip bomb)."""
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.INFLATION_FLOOR and ratio > limits.MAX_INFLATION:
            raise ValueError(
                f"{self.label}: {what} ({info.filename}) inflates from "
                f"{limits.format_bytes(info.compress_size)} to "
                f"{limits.format_bytes(info.file_size)} ({ratio:.0f}:1), beyond "
                f"mlstm.io.limits.MAX_INFLATION = {limits.MAX_INFLATION}:1; refused unread as "
                "a likely zip bomb (raise the limit if the file is yours)")

    def read_text(self, member: str, max_bytes: int, what: str, limit_name: str) -> bytes:
        """The bytes of ``member``, refused beyond ``max_bytes`` before and while reading."""
        info = self.info(member, what)
        too_big = (f"{self.label}: {what} ({member}) is larger than "
                   f"mlstm.io.limits.{limit_name} = {limits.format_bytes(max_bytes)}")
        if info.file_size > max_bytes:
            raise ValueError(f"{too_big}: the archive says "
                             f"{limits.format_bytes(info.file_size)}")
        self.check_inflation(info, what)
        with self._reading(member, what):
            with self.zip.open(info) as f:
                raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ValueError(too_big)
        return raw

    def header(self, member: str, what: str) -> NpyHeader:
        """The :class:`NpyHeader` of an array member (its data not read, nor yet checked:
        the caller checks shape and dtype, then :meth:`check_size`)."""
        info = self.info(member, what)
        with self._reading(member, what):
            with self.zip.open(info) as f:
                return _read_header(f, self.label, what)

    def check_size(self, member: str, header: NpyHeader, what: str) -> None:
        """The member holds exactly the data its header announces, and is no zip bomb."""
        info = self.info(member, what)
        expected = header.offset + header.nbytes
        if info.file_size != expected:
            raise ValueError(f"{self.label}: {what} ({member}) is damaged: its header announces "
                             f"shape {header.shape} {header.dtype.name} "
                             f"({limits.format_bytes(header.nbytes)} of data), the member holds "
                             f"{limits.format_bytes(max(info.file_size - header.offset, 0))}")
        self.check_inflation(info, what)

    def read_into(self, member: str, header: NpyHeader, out: Array, what: str) -> Array:
        """Read the data of ``member`` (its ``header`` already checked) into ``out``.

        ``out`` is a C-contiguous array of ``header.shape`` and ``header.dtype``; data in
        Fortran order is read into a transposed buffer first.
        """
        target = (np.empty(header.shape[::-1], header.dtype) if header.fortran_order
                  else out)
        # ndarray has the buffer protocol; numpy's stubs declare it for Python >= 3.12 only
        view = (memoryview(target.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
                if target.size else None)
        with self._reading(member, what):
            # ZipFile.open in read mode returns a ZipExtFile, a BufferedIOBase (readinto)
            with cast(io.BufferedIOBase, self.zip.open(self.zip.getinfo(member))) as f:
                _skip(f, header.offset)
                position = 0
                while view is not None and position < len(view):
                    got = f.readinto(view[position:position + _CHUNK])
                    if not got:
                        raise ValueError(f"{self.label}: {what} ({member}) is truncated")
                    position += got
                if f.read(1):   # reading to the end also makes zipfile check the CRC
                    raise ValueError(f"{self.label}: {what} ({member}) holds more data than "
                                     "its header announces")
        if header.fortran_order:
            out[...] = target.T
        return out

    def read_array(self, member: str, header: NpyHeader, what: str) -> Array:
        """A new array with the data of ``member`` (its ``header`` already checked)."""
        return self.read_into(member, header, np.empty(header.shape, header.dtype), what)

    def _reading(self, member: str, what: str) -> _Reading:
        return _Reading(self.label, member, what)


class _Reading:
    """Turn the zip/zlib/EOF errors of damaged data into a ValueError naming the member."""

    def __init__(self, label: str, member: str, what: str) -> None:
        self.label, self.member, self.what = label, member, what

    def __enter__(self) -> _Reading:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if kind is None or issubclass(kind, (ValueError, KeyboardInterrupt, MemoryError)):
            return False
        if issubclass(kind, Exception):
            raise ValueError(f"{self.label}: {self.what} ({self.member}) is corrupted "
                             f"({kind.__name__}: {exc})") from None
        return False


def _read_header(f: IO[bytes], label: str, what: str) -> NpyHeader:
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise ValueError(f"{label}: {what} is not a .npy array") from None
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{label}: {what} has .npy format version {version}; mlstm reads "
                         "versions 1.0 and 2.0")
    try:
        shape, fortran_order, dtype = readers[version](f, max_header_size=_HEADER_LIMIT)
    except ValueError as exc:
        raise ValueError(f"{label}: {what} has a damaged .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{label}: {what} cannot be read safely: it holds Python objects "
                         f"(dtype {dtype}), which only unpickling could read; mlstm never "
                         "unpickles")
    # The data starts right after the header (ZipExtFile counts what it has returned).
    return NpyHeader(shape, dtype, fortran_order, f.tell())


def _skip(f: IO[bytes] | io.BufferedIOBase, n: int) -> None:
    while n > 0:
        got = f.read(min(n, _CHUNK))
        if not got:
            raise EOFError("the member ends inside its header")
        n -= len(got)
