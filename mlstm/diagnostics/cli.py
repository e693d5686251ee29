"""``python -m mlstm diagnose``: the seed article's three setups, or your own model.

Without arguments: the seed scenario (:mod:`mlstm.diagnostics.seed`) on built-in data,
Example 1, Example 2 and a sound setup side by side, with an explanation of what the
measurements show. With ``MODEL.keras DATA.npz``: :func:`mlstm.diagnostics.diagnose` on that
model.

Exit codes: 0 the diagnosis ran (warnings at most), 1 it found an error-level finding, 2 the
command was used wrongly (a bad option, a missing or unreadable file, a model mlstm cannot
import, data that does not fit the model): one line on stderr names the problem and what is
supported, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, ParamSpec, Sequence, TypeVar

from .datafile import check_npz_file, check_readable_file, load_arrays
from .seed_text import (explain_seed_results, format_example3, format_findings,
                        format_side_by_side)

if TYPE_CHECKING:
    from ..model import Model
    from ..optimizers import Optimizer

_P = ParamSpec("_P")
_T = TypeVar("_T")

__all__ = ["main", "format_side_by_side", "explain_seed_results", "format_findings",
           "load_arrays", "UsageError"]

PROG = "python -m mlstm diagnose"

_DESCRIPTION = """\
Measure why a model is not learning.

  python -m mlstm diagnose                       the seed article's three setups, side by side
  python -m mlstm diagnose MODEL.keras DATA.npz  your model (needs the keras extra)
  python -m mlstm diagnose --example3            the seed's Example 3 (a Reshape head)

Each finding's fix is tried before it is advised (--no-verify to skip): a copy is retrained
from the same weights with the fix, for the same steps and seed, and the fix is reported
verified or not verified, with each output's loss before and after.

DATA.npz holds the inputs and targets: arrays named like the model's inputs and outputs,
or x0, x1, ... and y0, y1, ... in order (x and y for one of each).

Exit status: 0 diagnosed (warnings at most), 1 an error-level finding, 2 a usage error
(bad option, missing or unreadable file, unsupported model, data that does not fit)."""


class UsageError(Exception):
    """A mistake in how the command was called: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (not the usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
        return value
    return parse


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=_DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="a .keras file (Keras 3)")
    p.add_argument("data", nargs="?", help="a .npz file with the inputs and targets")
    p.add_argument("--steps", type=_int_at_least(0), default=None,
                   help="training steps traced on a copy of your model (default 50); the "
                        "seed scenario traces its whole training (--epochs)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=32)
    p.add_argument("--seed", type=_int_at_least(0), default=0)
    p.add_argument("--plot", metavar="PNG", help="draw the report(s) to this PNG (matplotlib)")
    p.add_argument("--json", metavar="PATH", help="write the report(s) as JSON")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not try the fixes: by default each finding's fix is tried by "
                        "retraining a copy from the same weights for the same steps, and "
                        "reported verified or not")
    g = p.add_argument_group("seed scenario")
    g.add_argument("--epochs", type=_int_at_least(1), default=15)
    g.add_argument("--samples", type=_int_at_least(2), default=512)
    g.add_argument("--raw-inputs", action="store_true",
                   help="record the second input in raw units (per-feature scales 0.05 to 20, "
                        "offsets up to 10) for Examples 1 and 2; the sound setup standardizes")
    g.add_argument("--details", action="store_true", help="print each setup's full report")
    g.add_argument("--example3", action="store_true",
                   help="the seed's Example 3 instead (a Reshape head, its custom loss "
                        "indexing y_true[0]) next to its sound version")
    g = p.add_argument_group("your model: compile settings (they replace the file's, if any)")
    g.add_argument("--loss", help="comma-separated, one per output (mse, binary_crossentropy)")
    g.add_argument("--loss-weights", help="comma-separated numbers, one per output")
    g.add_argument("--optimizer", help="adam or sgd (default: the file's, else adam)")
    g.add_argument("--learning-rate", type=_learning_rate,
                   help="default: the file's, else the optimizer's default")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0, 1 or 2, see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:          # --help (0) or a bad option (2, message printed)
        return int(stop.code or 0)    # argparse exits with 0 or 2
    try:
        if args.plot:
            from .plotting import require_matplotlib
            try:
                require_matplotlib()
            except ImportError as exc:
                raise UsageError(str(exc)) from None
        for path in (args.json, args.plot):      # before minutes of work, not after
            if path is not None and not os.path.isdir(os.path.dirname(path) or "."):
                raise UsageError(f"cannot write {path!r}: no directory "
                                 f"{os.path.dirname(path)!r}")
        if args.model is None and args.data is None:
            return _run_seed(args)
        if args.data is None:
            raise UsageError("give both MODEL.keras and DATA.npz (or neither, for the seed "
                             "scenario)")
        return _run_user(args)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# --------------------------------------------------------------------------- seed scenario
def _run_seed(args: argparse.Namespace) -> int:
    from . import seed as seed_module
    from .plotting import plot_reports

    t0 = time.perf_counter()
    if args.example3:
        results = seed_module.run_example3(epochs=args.epochs, samples=args.samples,
                                           batch_size=args.batch_size, seed=args.seed,
                                           verify=args.verify)
        seconds = time.perf_counter() - t0
        print(format_example3(results))
    else:
        results = seed_module.run_seed_scenario(epochs=args.epochs, samples=args.samples,
                                                batch_size=args.batch_size, seed=args.seed,
                                                raw_inputs=args.raw_inputs, verify=args.verify)
        seconds = time.perf_counter() - t0
        print(format_side_by_side(results, args))
        print()
        print(explain_seed_results(results))
    print(format_findings(results))
    if args.details:
        for res in results.values():
            print("\n" + "=" * 100 + f"\n{res['title']}\n" + "=" * 100)
            print(res["report"])
    print(f"\n({len(results)} setups trained and diagnosed"
          + (", their fixes tried by retraining," if args.verify else "")
          + f" in {seconds:.1f} s)")
    if args.json:
        _write_json(args.json, {name: {"title": r["title"], "metrics": r["metrics"],
                                       "report": r["report"].to_dict()}
                                for name, r in results.items()})
    if args.plot:
        _write(args.plot, lambda: plot_reports([r["report"] for r in results.values()],
                                               args.plot,
                                               titles=[r["title"] for r in results.values()]))
    return 0


# --------------------------------------------------------------------------- your model
def _run_user(args: argparse.Namespace) -> int:
    from .diagnosis import diagnose

    # Both files are checked before Keras is imported (seconds), so a typo fails at once.
    if not os.fspath(args.model).endswith(".keras"):
        raise UsageError(f"model {args.model!r}: give a .keras file (Keras 3's "
                         "model.save('model.keras')); .h5 and SavedModel are not read")
    head = _checked(check_readable_file, args.model, "model file")
    if not head.startswith(b"PK"):
        raise UsageError(f"model file {args.model!r} is not a .keras file (a zip archive "
                         "written by Keras 3's model.save)")
    _checked(check_npz_file, args.data)
    model = _load_model(args.model)
    _compile(model, args)
    x, y = _checked(load_arrays, args.data, model.input_names, model.output_names,
                    input_shapes=[tuple(t.shape) for t in model.inputs],
                    before_reading=lambda shapes: _check_memory(model, shapes, args))
    try:
        report = diagnose(model, x, y, steps=50 if args.steps is None else args.steps,
                          batch_size=args.batch_size, seed=args.seed, verify=args.verify)
    except (ValueError, TypeError) as exc:       # data mlstm refuses, and no finding says why
        raise UsageError(f"{args.data}: {exc}") from None
    except MemoryError:
        raise UsageError(f"{args.data}: the data does not fit in memory") from None
    print(report)
    if args.json:
        _write_json(args.json, report.to_dict())
    if args.plot:
        _write(args.plot, lambda: report.plot(args.plot))
    return 1 if any(f.severity == "error" for f in report.findings) else 0


def _check_memory(model: Model, shapes: Sequence[tuple[int, ...]], args: Any) -> None:
    """Refuse data whose training steps at ``--batch-size`` would need more memory than
    mlstm.io.limits.MAX_BATCH_BYTES, from the headers, before reading it."""
    from ..io.memory import check_memory

    check_memory(model, shapes, min(args.batch_size, shapes[0][0]), "train",
                 f"data file {args.data!r} (--batch-size {args.batch_size})")


def _checked(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(...)``, its ValueError turned into a :class:`UsageError`."""
    try:
        return function(*args, **kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence what TensorFlow and Keras write to the process's stderr (C++ log lines that
    ``TF_CPP_MIN_LOG_LEVEL`` does not reach, absl warnings) while the model is loaded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:                     # no file descriptor 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _load_model(path: str) -> Model:
    from ..interop.keras import load_keras

    try:
        with _quiet_stderr():
            return load_keras(path)
    except ImportError as exc:
        raise UsageError(f"reading a .keras file needs Keras: {exc} "
                         "(pip install 'mlstm[keras]')") from None
    except (ValueError, TypeError, KeyError, OSError, EOFError) as exc:
        # Unsupported layers, options, losses and optimizers are ValueErrors that name what
        # mlstm supports; a damaged archive is one of the others.
        raise UsageError(f"{path}: {exc}") from None


def _compile(model: Model, args: argparse.Namespace) -> None:
    """Compile ``model`` with the command's settings over the file's (or refuse to guess)."""
    given = [a for a in ("loss", "loss_weights", "optimizer", "learning_rate")
             if getattr(args, a) is not None]
    if not given and model.compiled:
        return
    if args.loss is None and not model.compiled:
        raise UsageError(f"{args.model} has no compile config (loss, optimizer): give --loss "
                         "(and --loss-weights, --optimizer, --learning-rate)")
    losses = (args.loss.split(",") if args.loss is not None else list(model._losses))
    weights: list[float] | None
    if args.loss_weights is not None:
        try:
            weights = [float(w) for w in args.loss_weights.split(",")]
        except ValueError:
            raise UsageError(f"--loss-weights: expected comma-separated numbers, got "
                             f"{args.loss_weights!r}") from None
    else:
        weights = list(model._loss_weights) if model.compiled else None
    try:
        optimizer = _optimizer(model, args)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--optimizer/--learning-rate: {exc}") from None
    try:
        model.compile(optimizer=optimizer, loss=losses if len(losses) > 1 else losses[0],
                      loss_weights=weights)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"compile settings: {exc}") from None


def _optimizer(model: Model, args: argparse.Namespace) -> Optimizer:
    """The file's optimizer, another one (``--optimizer``), or either at ``--learning-rate``."""
    from .. import optimizers

    if args.optimizer is not None or not model.compiled:
        cls = type(optimizers.get(args.optimizer or "adam"))
        return cls() if args.learning_rate is None else cls(learning_rate=args.learning_rate)
    if args.learning_rate is None:
        return model.optimizer
    config = dict(model.optimizer.get_config(), learning_rate=args.learning_rate)
    return type(model.optimizer).from_config(config)


def _write_json(path: str, value: Any) -> None:
    _write(path, lambda: _dump(path, value))


def _dump(path: str, value: Any) -> None:
    with open(path, "w") as fh:
        json.dump(value, fh, indent=1)


def _write(path: str, write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as exc:
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
