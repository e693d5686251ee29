"""Benchmarks of mlstm (not tests: not collected by the default ``pytest`` run).

- ``python -m benchmarks`` or ``python benchmarks/run.py``: mlstm against Keras and PyTorch,
  side by side (the machinery lives in ``benchmarks/bench.py``).
- ``python -m pytest benchmarks``: a pytest-benchmark micro-suite of the ops.
"""
