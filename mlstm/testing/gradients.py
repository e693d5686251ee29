"""``assert_gradients_close``: a backward pass against finite differences, as a test."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..gradcheck import gradcheck
from ..gradcheck.describe import describe_entry
from .caveats import gradcheck_caveats

if TYPE_CHECKING:
    from typing_extensions import Unpack      # typing.Unpack from Python 3.11 on

    from ..gradcheck.check import GradcheckOptions
    from ..gradcheck.report import GradcheckReport
    from ..model import Model

__all__ = ["assert_gradients_close", "GradientMismatch"]


def assert_gradients_close(model: Model, x: Any, y: Any, rtol: float = 1e-6,
                           **gradcheck_kwargs: Unpack[GradcheckOptions]) -> GradcheckReport:
    """Assert that ``model``'s gradients match finite differences (float64, five-point).

    Runs :func:`mlstm.gradcheck` (a float32 model is cloned to float64) on every parameter
    and input — by default along a few random directions per array, with a drill-down by
    entries into the arrays that fail — and fails when any max relative error reaches
    ``rtol``, with a message that names each failing parameter or input, its error and its
    worst entry: the gate block and unit for LSTM weights, the sample, time step and
    feature for sequence inputs.

    Parameters
    ----------
    model : Model
        Compiled.
    x, y : inputs and targets, as for ``fit``.
    rtol : float
    **gradcheck_kwargs
        Passed to :func:`mlstm.gradcheck` (``h``, ``inputs``, ``method``, ``max_entries``,
        ``seed``, ``directions``, ``drill_down``, ``progress``).

    Returns
    -------
    GradcheckReport
        When the check passes.

    Raises
    ------
    GradientMismatch
        An AssertionError whose ``caveats`` say why finite differences cannot judge this
        case (:func:`gradcheck_caveats`), empty when they can: then the gradients are wrong.
    """
    report = gradcheck(model, x, y, rtol=rtol, **gradcheck_kwargs)
    bad = report.failing()                               # NaN fails too
    if not bad:
        return report
    over = (f"{report.settings['directions']} random directions per array"
            if report.method == "projection" else "entries")
    lines = [f"gradients of model {model.name!r} do not match finite differences "
             f"(max relative error must be below {rtol:g}; {report.method} ({over}), "
             f"five-point, h={report.h:g}, float64):"]
    for name in bad:
        row = report.rows[name]
        entry = describe_entry(model, name, row.get("worst_index"))
        drill = row.get("drill_down")
        if drill and drill["worst"]:
            entry += (f" (rel err {drill['worst'][0]['rel_error']:.3g}; "
                      f"{drill['failing_entries']} of {drill['entries_checked']} entries "
                      f"checked one by one reach rtol)")
        lines.append(f"  {name}: max rel error {row['max_rel_error']:.3g} "
                     f"(max abs error {row['max_abs_error']:.3g})"
                     + (f", worst entry {entry}" if entry else ""))
    caveats = gradcheck_caveats(model, x, y, h=report.h, rtol=rtol, report=report)
    for caveat in caveats:
        lines.append(f"  note: {caveat}; finite differences cannot judge this case")
    lines += ["", str(report)]
    raise GradientMismatch("\n".join(lines), caveats)


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_gradients_close`; ``caveats`` (list of str) are the reasons
    finite differences cannot judge the case, empty when the gradients are simply wrong."""

    def __init__(self, message: str, caveats: Sequence[str]) -> None:
        super().__init__(message)
        self.caveats = list(caveats)


