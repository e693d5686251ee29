"""Command line: ``python -m mlstm {demo,diagnose,crosscheck}``.

``demo`` trains the two-input, two-output model on built-in synthetic data and prints each
output's loss falling. The other commands live in their own modules and are imported only
when asked for.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_demo_model", "compile_demo_model", "run_demo", "DEMO_LOSSES",
           "DEMO_LOSS_WEIGHTS"]

from .demo import (DEMO_LOSS_WEIGHTS, DEMO_LOSSES, build_demo_model,  # noqa: F401
                   compile_demo_model, run_demo)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mlstm`` command (also ``python -m mlstm``): ``demo``, ``diagnose``, ``crosscheck``.

    Returns the exit code: 0 success, 1 a failed demo or an error-level finding, 2 a
    user's mistake (said in one line).
    """
    parser = argparse.ArgumentParser(prog="mlstm",
                                     description="mlstm: a transparent NumPy LSTM")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the two-input/two-output model on built-in data")
    demo.add_argument("--epochs", type=int, default=15)
    demo.add_argument("--seed", type=int, default=0)
    sub.add_parser("diagnose", help="why a model is not learning (see mlstm.diagnostics)",
                   add_help=False)
    sub.add_parser("crosscheck", help="compare with Keras step by step (needs keras)",
                   add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("diagnose", "crosscheck"):
        command, rest = argv[0], argv[1:]
        if command == "diagnose":
            from .diagnostics import cli_main
        else:
            from .interop.keras import cli_main
        return cli_main(rest)
    if argv and argv[0] == "bench":
        print("python -m mlstm: the benchmarks moved out of the package; from a clone of the "
              "repository run: python benchmarks/run.py", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command == "demo":
        _, _, summary = run_demo(epochs=args.epochs, seed=args.seed)
        ok = (summary["out1_loss_last"] < 0.5 * summary["out1_loss_first"]
              and summary["out2_binary_accuracy"] > 0.9)
        return 0 if ok else 1
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
