"""The progress line of a long gradient check (on stderr).

The time per loss evaluation is measured on the first evaluations; when the whole check
is then expected to take more than :data:`THRESHOLD_SECONDS`, one line says how long and
why (and, for the per-entry check, how long the default check would take), and the line
is updated as the check goes (rewritten in place on a terminal, a new line every
:data:`REPORT_EVERY_SECONDS` otherwise).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "THRESHOLD_SECONDS"]

#: A check expected to take longer than this announces itself.
THRESHOLD_SECONDS = 3.0
#: Off a terminal, progress is reported at most this often.
REPORT_EVERY_SECONDS = 15.0
_CALIBRATION_EVALUATIONS = 8


class Progress:
    """Counts loss evaluations against a planned total and reports on ``stream``.

    Parameters
    ----------
    planned : int
        Loss evaluations the check will make (drill-downs add theirs with :meth:`plan`).
    describe : callable ``(seconds) -> str``
        The announcement, given the estimated total time.
    enabled : bool or None
        True: always report; False: never; None: when the estimate exceeds
        :data:`THRESHOLD_SECONDS`.
    """

    def __init__(self, planned: int, describe: Callable[[float], str], enabled: bool | None = None,
                 stream: TextIO | None = None) -> None:
        self.planned, self.done, self.describe, self.enabled = planned, 0, describe, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last_report = time.perf_counter()
        self.active = False               # decided once the first evaluations are timed
        self.calibrated = False

    def plan(self, evaluations: int) -> None:
        """Add ``evaluations`` to the planned total."""
        self.planned += evaluations

    def advance(self, evaluations: int) -> None:
        """``evaluations`` more are done."""
        self.done += evaluations
        now = time.perf_counter()
        if not self.calibrated:
            if self.done < min(_CALIBRATION_EVALUATIONS, self.planned):
                return
            self.calibrated = True
            estimate = (now - self.start) / self.done * self.planned
            self.active = self.enabled is True or (
                self.enabled is None and estimate > THRESHOLD_SECONDS)
            if self.active:
                self._write(self.describe(estimate), newline=True)
                self.last_report = now
        elif self.active and now - self.last_report >= (
                0.5 if self.tty else REPORT_EVERY_SECONDS):
            self._status(now)
            self.last_report = now

    def _status(self, now: float) -> None:
        rate = self.done / max(now - self.start, 1e-9)
        left = max(self.planned - self.done, 0) / rate
        self._write(f"gradcheck: {self.done:,} of {self.planned:,} loss evaluations, "
                    f"about {left:.0f} s left", newline=not self.tty)

    def finish(self, summary: str) -> None:
        """The closing line (only when the check reported progress)."""
        if self.active:
            seconds = time.perf_counter() - self.start
            self._write(f"gradcheck: {summary} in {seconds:.1f} s", newline=True, clear=self.tty)

    def _write(self, text: str, newline: bool, clear: bool = False) -> None:
        if self.tty and not newline:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(("\r\x1b[K" if clear else "") + text + "\n")
        self.stream.flush()
