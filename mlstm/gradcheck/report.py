"""What a gradient check found: per array errors, the verdict, and the drill-downs."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._typing import Array

__all__ = ["GradcheckReport"]

_METHOD_WORDS = {
    "projection": "{directions} random directions per array",
    "entries": "every entry",
}


class GradcheckReport:
    """Per-parameter (and per-input) errors of a gradient check.

    Attributes
    ----------
    rows : dict name -> dict
        ``max_rel_error``, ``max_abs_error``, ``checked`` (entries compared, or moved by the
        directions), ``skipped`` (entries whose perturbation changes a mask); checked
        along random directions: ``directions``, and for an array that failed
        ``drill_down`` (see :func:`mlstm.gradcheck.drill.drill_down`; each worst entry
        with ``where``, its description) and ``worst_index``; checked entry by entry
        (``method="entries"``, or an array of at most ``directions`` entries):
        ``worst_index``.
    h, method, rtol : float, str, float
    settings : dict
        The arguments of the check (to run it again, e.g. at another ``h``).
    evaluations : int
        Loss evaluations (forward passes) the check made.
    seconds : float
        Its wall time.
    """

    def __init__(self, rows: dict[str, dict[str, Any]], h: float, method: str,
                 rtol: float = 1e-6, settings: Mapping[str, Any] | None = None,
                 evaluations: int = 0, seconds: float = 0.0,
                 directions: dict[str, list[Array] | None] | None = None) -> None:
        self.rows, self.h, self.method, self.rtol = rows, h, method, rtol
        self.settings = dict(settings or {}, h=h, method=method, rtol=rtol)
        self.evaluations, self.seconds = evaluations, seconds
        # {name: [v, ...]}: the directions each array was moved along (projection only;
        # None for an array checked entry by entry); mlstm.testing's caveats look along
        # them for relus that flip.
        self.directions = directions or {}

    @property
    def max_relative_error(self) -> float:
        """The worst relative error over every parameter and input (NaN if any is NaN)."""
        errors = [r["max_rel_error"] for r in self.rows.values()]
        if any(math.isnan(e) for e in errors):
            return float("nan")
        return max(errors, default=0.0)

    def ok(self, tol: float | None = None) -> bool:
        """True when every relative error is below ``tol`` (default: the check's rtol)."""
        return bool(self.max_relative_error < (self.rtol if tol is None else tol))

    def failing(self, tol: float | None = None) -> list[str]:
        """Names of the arrays whose relative error reaches ``tol`` (or is NaN)."""
        tol = self.rtol if tol is None else tol
        return [name for name, r in self.rows.items() if not r["max_rel_error"] < tol]

    def worst(self) -> tuple[str, dict[str, Any]]:
        """``(name, row)`` with the largest relative error."""
        return max(self.rows.items(), key=lambda kv: (math.isnan(kv[1]["max_rel_error"]),
                                                      kv[1]["max_rel_error"]))

    def to_dict(self) -> dict[str, Any]:
        return {"h": self.h, "method": self.method, "rtol": self.rtol, "ok": self.ok(),
                "rows": self.rows, "max_relative_error": self.max_relative_error,
                "evaluations": self.evaluations, "seconds": self.seconds}

    def verdict(self) -> str:
        """One line: passed or failed, the largest error, what was compared."""
        how = _METHOD_WORDS.get(self.method, self.method).format(
            directions=self.settings.get("directions"))
        if self.method == "entries" and self.settings.get("max_entries") is not None:
            how = f"up to {self.settings['max_entries']} random entries per array"
        detail = (f"({self.method}: {how}, five-point stencil, h={self.h:g}, float64; "
                  f"{len(self.rows)} arrays, {self.evaluations:,} loss evaluations, "
                  f"{self.seconds:.1f} s)")
        if self.ok():
            return (f"gradient check passed: largest relative error "
                    f"{self.max_relative_error:.2g} < rtol {self.rtol:g} {detail}")
        failing = self.failing()
        name, row = self.worst()
        return (f"gradient check FAILED: {len(failing)} of {len(self.rows)} arrays reach rtol "
                f"{self.rtol:g} ({', '.join(failing)}); largest relative error "
                f"{row['max_rel_error']:.2g} in {name} {detail}")

    def __str__(self) -> str:
        width = max([len(n) for n in self.rows] + [9])
        lines = [self.verdict(),
                 f"  {'parameter':<{width}}  {'max rel err':>11}  {'max abs err':>11}  checked"]
        for name, r in self.rows.items():
            skipped = f" (+{r['skipped']} skipped)" if r["skipped"] else ""
            directions = (f" x {r['directions']} directions" if "directions" in r
                          else " one by one")
            flag = "" if r["max_rel_error"] < self.rtol else "  <- fails"
            lines.append(f"  {name:<{width}}  {r['max_rel_error']:11.2e}  "
                         f"{r['max_abs_error']:11.2e}  {r['checked']}{skipped}{directions}{flag}")
        for name, r in self.rows.items():
            if r.get("drill_down"):
                lines += _drill_lines(name, r["drill_down"], self.rtol)
        return "\n".join(lines)

    __repr__ = __str__


def _drill_lines(name: str, drill: Mapping[str, Any], rtol: float) -> list[str]:
    how = (f"after {drill['bisection_steps']} bisection steps, "
           if drill["bisection_steps"] else "")
    lines = [f"  drill-down {name}: {how}{drill['entries_checked']} of {drill['entries']} "
             f"entries checked one by one ({drill['evaluations']} loss evaluations); "
             f"{drill['failing_entries']} reach rtol {rtol:g}; worst:"]
    for w in drill["worst"]:
        lines.append(f"    {w.get('where') or w['index']}: analytic {w['analytic']:.6g}, "
                     f"numeric {w['numeric']:.6g}, rel err {w['rel_error']:.2g}")
    return lines
