"""``python -m mlstm crosscheck [MODEL.keras DATA.npz]``: the cross-check from a shell.

A user's mistake (a missing or unreadable file, a ``.npy`` where a ``.npz`` is expected,
arrays that do not match the model's inputs and outputs, a layer, option, loss or
optimizer mlstm does not support) ends the command with one line on stderr that names the
problem and what is supported, and exit status 2; never a traceback. Everything that can
be checked is checked before the comparison starts, so that an error during the
comparison itself (a bug) still shows its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

import numpy as np

from ..._typing import Array

if TYPE_CHECKING:
    from ...model import Model

__all__ = ["cli_main"]

PROG = "python -m mlstm crosscheck"


class UserError(Exception):
    """A mistake in the command's arguments or files: reported in one line, status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's usage errors, in one line too
        _print_error(f"{message} (see {PROG} --help)")
        raise SystemExit(2)


def _print_error(message: object) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _demo_pair(samples: int, seed: int) -> tuple[Model, list[Array], list[Array]]:
    from ...data import make_demo_data
    from ...demo import build_demo_model, compile_demo_model

    data = make_demo_data(n_samples=samples, timesteps=20, features=(8, 8), seed=seed)
    model = compile_demo_model(build_demo_model(seed=seed))
    return model, [data["x1"], data["x2"]], [data["y1"], data["y2"]]


def _check_path(path: str, what: str, suffix: str, hint: str) -> None:
    if not path.endswith(suffix):
        raise UserError(f"{what} must be a {suffix} file ({hint}), got {path!r}")
    if not os.path.isfile(path):
        raise UserError(f"{what} {path!r}: no such file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{what} {path!r}: not readable (permission denied)")


def _read_npz(path: str) -> dict[str, Array]:
    """{name: array} of a .npz file (plain arrays only: allow_pickle=False)."""
    hint = "np.savez(path, x1=..., out1=...): arrays named after the model's inputs/outputs"
    if path.endswith(".npy"):
        raise UserError(f"DATA {path!r} is a single .npy array; crosscheck needs a .npz of "
                        f"named inputs and targets ({hint})")
    _check_path(path, "DATA", ".npz", hint)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read DATA {path!r}: {exc}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise UserError(f"DATA {path!r} holds a single array (a .npy file); crosscheck needs "
                        f"a .npz of named inputs and targets ({hint})")
    try:
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read DATA {path!r}: {exc}") from None


def _pick(arrays: dict[str, Array], path: str, names: list[str], prefix: str) -> list[Array]:
    if all(n in arrays for n in names):
        return [arrays[n] for n in names]
    if len(names) == 1 and prefix in arrays:
        return [arrays[prefix]]
    positional = [f"{prefix}{k}" for k in range(len(names))]
    if all(n in arrays for n in positional):
        return [arrays[n] for n in positional]
    raise UserError(f"DATA {path!r}: expected arrays named {names} (or {positional}"
                    f"{' or ' + repr(prefix) if len(names) == 1 else ''}); the file has "
                    f"{sorted(arrays)}")


def _load_keras(path: str) -> Any:
    from .backend import import_keras
    from .importing import load_keras_model

    _check_path(path, "MODEL", ".keras", "a compiled model saved with model.save('m.keras')")
    try:
        import_keras()
    except ImportError as exc:
        raise UserError(exc) from None
    try:
        return load_keras_model(path)
    except Exception as exc:      # Keras raises many kinds on a file it cannot read
        raise UserError(f"cannot load MODEL {path!r} with Keras: {type(exc).__name__}: "
                        f"{exc}") from None


def _user_pair(model_path: str, data_path: str, samples: int | None
               ) -> tuple[Any, list[Array], list[Array]]:
    """(Keras model, inputs, targets), all checked against each other."""
    from ...io.memory import check_memory
    from .importing import from_keras

    arrays = _read_npz(data_path)
    kmodel = _load_keras(model_path)
    try:
        mine = from_keras(kmodel)
    except (ValueError, TypeError) as exc:
        raise UserError(f"MODEL {model_path!r}: {exc}") from None
    if not mine.compiled:
        raise UserError(f"MODEL {model_path!r} has no compile config (loss and optimizer): "
                        "compile the Keras model before model.save")
    xs = _pick(arrays, data_path, mine.input_names, "x")
    ys = _pick(arrays, data_path, mine.output_names, "y")
    if samples:
        xs, ys = [a[:samples] for a in xs], [a[:samples] for a in ys]
    try:
        checked = mine._inputs(xs)
        mine._targets(ys, checked[0].shape[0])
    except (ValueError, TypeError) as exc:
        raise UserError(f"DATA {data_path!r} does not fit MODEL {model_path!r}: {exc}") from None
    try:     # the whole data is one batch of the cross-check's training steps
        check_memory(mine, [a.shape for a in checked], len(checked[0]), "train",
                     f"DATA {data_path!r}")
    except ValueError as exc:
        raise UserError(f"{exc} (or pass --samples)") from None
    return kmodel, xs, ys


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Compare mlstm with Keras number by number: forward pass, per-output "
                    "losses, gradients (total and per output), weights after each optimizer "
                    "step. Without arguments: the demo model on built-in data.")
    parser.add_argument("model", nargs="?", help="a compiled model saved as .keras")
    parser.add_argument("data", nargs="?", help=".npz with inputs and targets, named after "
                        "the model's inputs and outputs (or x/y, x0../y0..)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (default 3)")
    parser.add_argument("--samples", type=int, default=None,
                        help="use only the first N samples (demo: 64)")
    parser.add_argument("--seed", type=int, default=0, help="demo model and data seed")
    parser.add_argument("--eager", action="store_true",
                        help="run Keras eagerly (no ~2 s tf.function tracing; same arithmetic)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlstm crosscheck [MODEL.keras DATA.npz] [--steps N] [--json] ...``.

    Returns 0 when every comparison is within tolerance, 1 otherwise, 2 for a mistake in
    the arguments or files (one line on stderr; argparse's own usage errors exit with
    status 2 the same way).
    """
    from .backend import silence_tensorflow_logging
    from .comparison import crosscheck
    from .report import format_report

    parser = _parser()
    args = parser.parse_args(argv)
    if (args.model is None) != (args.data is None):
        parser.error("give both a .keras model and a .npz of inputs/targets, or neither")
    if args.steps < 0 or (args.samples is not None and args.samples <= 0):
        parser.error("--steps must be >= 0 and --samples > 0")
    try:
        model: Any
        if args.model is None:
            model, x, y = _demo_pair(args.samples or 64, args.seed)
        else:
            model, x, y = _user_pair(args.model, args.data, args.samples)
        silence_tensorflow_logging()
    except (UserError, ImportError) as exc:    # ImportError: the keras extra is missing
        _print_error(exc)
        return 2
    report = crosscheck(model, x, y, steps=args.steps, as_dict=True,
                        run_eagerly=True if args.eager else None)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0 if report["ok"] else 1
