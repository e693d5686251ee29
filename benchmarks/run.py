"""Side-by-side benchmark of mlstm, Keras 3 (TensorFlow) and PyTorch: one entry point.

    python benchmarks/run.py                 # S, M, L; results in benchmarks/results/
    python benchmarks/run.py --sizes S --rounds 3
    python benchmarks/run.py --readme README.md   # also refresh README's bench section

Every option of :func:`bench.cli_main` is accepted (``--help``); this script only
changes the default output directory to ``benchmarks/results``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main(argv=None):
    from bench import cli_main
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", RESULTS]
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
