"""The progress line of fit / evaluate / predict, like Keras' ``Progbar``.

``verbose=1``: a bar per epoch, ``  3/10 ━━━━━━──────────── 1.2s elapsed, ETA 2.8s -
400ms/step - loss: 0.1234 - out1_loss: ...``, redrawn in place after every step on a
terminal (the running means of the epoch so far) and written once, complete, at the end of
the epoch (on a terminal and elsewhere, so that logs stay readable). ``verbose=2``: one line
per epoch, ``10/10 - 4.0s - 400ms/step - loss: ...``. ``verbose=0``: nothing.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO

__all__ = ["Progress"]

_BAR = 20


def _seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def _per_step(elapsed: float, steps: int) -> str:
    per = elapsed / max(steps, 1)
    return f"{per * 1000:.0f}ms/step" if per < 1 else f"{per:.1f}s/step"


class Progress:
    """Progress output for one loop over ``steps`` batches.

    Parameters
    ----------
    verbose : {0, 1, 2}
    steps : int
    stream : file, optional
        ``sys.stdout`` by default (read when writing, so that capture works).
    """

    def __init__(self, verbose: int, steps: int, stream: TextIO | None = None) -> None:
        self.verbose, self.steps = verbose, steps
        self._stream = stream
        self.t0 = time.perf_counter()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def live(self) -> bool:
        """Redraw after every step (verbose 1 on a terminal)."""
        isatty = getattr(self.stream, "isatty", None)
        return self.verbose == 1 and isatty is not None and isatty()

    def start(self, title: str | None = None) -> None:
        """A new loop (an epoch); ``title`` ("Epoch 1/5") is printed first, as Keras does."""
        self.t0 = time.perf_counter()
        if self.verbose and title:
            print(title, file=self.stream, flush=True)

    def line(self, step: int, logs: Mapping[str, float], final: bool = False) -> str:
        """The progress line after ``step`` of ``self.steps`` batches."""
        elapsed = time.perf_counter() - self.t0
        values = "".join(f" - {k}: {v:.4f}" for k, v in logs.items())
        if self.verbose == 2:
            return f"{step}/{self.steps} - {_seconds(elapsed)} - " \
                   f"{_per_step(elapsed, step)}{values}"
        width = len(str(self.steps))
        done = int(_BAR * step / max(self.steps, 1))
        bar = "━" * done + "─" * (_BAR - done)
        if final or step >= self.steps:
            when = f"{_seconds(elapsed)} elapsed"
        else:
            eta = elapsed / max(step, 1) * (self.steps - step)
            when = f"{_seconds(elapsed)} elapsed, ETA {_seconds(eta)}"
        return f"{step:>{width}}/{self.steps} {bar} {when} - " \
               f"{_per_step(elapsed, step)}{values}"

    def update(self, step: int, logs: Mapping[str, float]) -> None:
        """After a step: redraw the line in place (terminal, verbose 1)."""
        if self.live:
            self.stream.write("\r" + self.line(step, logs) + "\033[K")
            self.stream.flush()

    def finish(self, logs: Mapping[str, float], step: int | None = None) -> None:
        """The loop's final line (with the epoch's logs, validation included)."""
        if not self.verbose:
            return
        step = self.steps if step is None else step
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self.line(step, logs, final=True)
                          + ("\033[K" if self.live else "") + "\n")
        self.stream.flush()
