"""``CSVLogger``: one CSV row per epoch, as Keras writes it."""
from __future__ import annotations

import collections
import csv
import os
from typing import IO, Any

import numpy as np

from .base import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file: a header ``epoch,<keys sorted>`` and a row per
    epoch (Keras 3.15's format, ``val_`` columns included when the first epoch has none).

    Parameters
    ----------
    filename : str or os.PathLike
    separator : str
    append : bool
        Append to an existing file (no second header).
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: filename must be a path, got {type(filename).__name__}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename = os.fspath(filename)
        directory = os.path.dirname(os.path.abspath(self.filename))
        if not os.path.isdir(directory):
            raise ValueError(f"CSVLogger: directory {directory!r} does not exist")
        self.sep = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter[str] | None = None
        self.csv_file: IO[str] | None = None
        self.append_header = True

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self.append_header = not bool(len(f.readline()))
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="",
                             encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        assert self.csv_file is not None        # opened by on_train_begin
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            dialect = type("Dialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
            isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value
