"""The side-by-side benchmark (benchmarks/bench.py): its accounting, and one real run of mlstm at S.

The frameworks' columns are exercised by ``python benchmarks/run.py``; here the orchestrator,
the worker protocol, the tables and the JSON are run end to end with mlstm alone (seconds).
"""
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import bench, bilstm, classification

RUN_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_gemm_flops_counts_the_unavoidable_gemms_by_hand():
    size = {"N": 2, "T": 3, "D": 5, "H": 7, "O": (1, 4)}
    projection = 2 * 2 * 3 * 5 * 28           # x W, per LSTM
    recurrence = 2 * 2 * 3 * 7 * 28           # h U, per LSTM
    heads = 2 * 2 * 14 * 1 + 2 * 2 * 14 * 4   # concatenated 2H -> O1, O2
    forward = 2 * (projection + recurrence) + heads
    backward = 2 * (projection + 2 * recurrence) + 2 * heads   # dW; dU and dh_{t-1}; heads
    assert bench.gemm_flops(size) == {"forward": forward, "train": forward + backward}
    assert bench.backward_must_keep_bytes(size) == 2 * 3 * 2 * 6 * 7 * 4


def test_classification_gemm_flops_by_hand():
    """Embedding + LSTM + softmax head (CLS-M): one LSTM whose input gradient is needed (the
    Embedding is trained), a head of C classes; the lookup is not a GEMM."""
    size = {"N": 2, "T": 3, "V": 50, "D": 5, "H": 7, "C": 4}
    projection, recurrence, head = 2 * 2 * 3 * 5 * 28, 2 * 2 * 3 * 7 * 28, 2 * 2 * 7 * 4
    forward = projection + recurrence + head
    backward = 2 * projection + 2 * recurrence + 2 * head     # dW, dx; dU, dh_{t-1}; head
    assert classification.gemm_flops(size) == {"forward": forward, "train": forward + backward}
    assert classification.backward_must_keep_bytes(size) == 3 * 2 * 6 * 7 * 4
    assert bench.gemm_flops("CLS-M") == classification.gemm_flops("CLS-M")
    assert classification.LEARNING_RATE == bench.LEARNING_RATE
    assert set(bench.ALL_SIZES) == {"S", "M", "L", "CLS-M", "BiLSTM-M"}


def test_bidirectional_gemm_flops_by_hand():
    """Bidirectional(LSTM) + softmax head (BiLSTM-M): two LSTMs on a model input (no dL/dx),
    a head on the concatenated 2H."""
    size = {"N": 2, "T": 3, "D": 5, "H": 7, "C": 4}
    projection, recurrence, head = 2 * 2 * 3 * 5 * 28, 2 * 2 * 3 * 7 * 28, 2 * 2 * 14 * 4
    forward = 2 * (projection + recurrence) + head
    backward = 2 * (projection + 2 * recurrence) + 2 * head   # dW; dU, dh_{t-1}; head
    assert bilstm.gemm_flops(size) == {"forward": forward, "train": forward + backward}
    assert bilstm.backward_must_keep_bytes(size) == 2 * 3 * 2 * 6 * 7 * 4
    assert bench.gemm_flops("BiLSTM-M") == bilstm.gemm_flops("BiLSTM-M")
    assert bench.case_class("keras", "BiLSTM-M") is bilstm.KerasCase
    assert bilstm.LEARNING_RATE == bench.LEARNING_RATE
    # the same work as the demo at M: two LSTMs of its N, T, D, H
    assert {k: bilstm.SIZES["BiLSTM-M"][k] for k in "NTDH"} == {
        k: bench.SIZES["M"][k] for k in "NTDH"}


@pytest.mark.keras
@pytest.mark.torch
def test_the_bidirectional_cases_train_the_same_model():
    """mlstm and its Keras translation start from the same weights: the same first loss
    (float32); PyTorch, from its own initialization, near ln C as the others."""
    x, one_hot = bilstm.make_data("BiLSTM-M")
    assert x.shape == (64, 50, 32) and x.dtype == np.float32
    assert one_hot.shape == (64, 10) and np.all(one_hot.sum(axis=1) == 1)
    first = {fw: float(np.ravel(case("BiLSTM-M", 2).steps()["train"]())[0])
             for fw, case in bilstm.CASES.items()}
    assert first["mlstm"] == pytest.approx(first["keras"], rel=1e-5)
    assert all(abs(loss - np.log(10)) < 0.1 for loss in first.values()), first


@pytest.mark.keras
@pytest.mark.torch
def test_the_classification_cases_train_the_same_model():
    """mlstm and its Keras translation start from the same weights: the same first loss
    (float32); PyTorch, from its own initialization, near ln C as the others."""
    ids, one_hot = classification.make_data("CLS-M")
    assert ids.dtype == np.int32 and ids.min() >= 1 and ids.max() < 10_000
    assert one_hot.shape == (64, 10) and np.all(one_hot.sum(axis=1) == 1)
    first = {fw: float(np.ravel(case("CLS-M", 2).steps()["train"]())[0])
             for fw, case in classification.CASES.items()}
    assert first["mlstm"] == pytest.approx(first["keras"], rel=1e-5)
    assert all(abs(loss - np.log(10)) < 0.05 for loss in first.values()), first


def test_one_mlstm_run_at_size_s_writes_tables_and_json(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), "--sizes", "S", "--frameworks", "mlstm",
         "--rounds", "1", "--reps", "S=2", "--settle", "0", "--out", str(out), "--no-chart"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((out / "bench.json").read_text())
    size = results["sizes"]["S"]
    mlstm = size["frameworks"]["mlstm"]
    for step in ("train", "forward"):
        stats = mlstm[step]
        assert stats["n"] == 2 and len(stats["samples_ms"]) == 2
        assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"] < 5000, stats
        assert size["gemm_bound_ms"][step] > 0
    assert size["gemm_flops"] == bench.gemm_flops("S")
    assert mlstm["memory"]["traced_peak_bytes"] > 0
    table = (out / "table.md").read_text()
    assert "| S | train |" in table and "| S | forward |" in table
    assert "mlstm runs independent LSTMs on" in table


def test_one_mlstm_run_of_the_classification_model(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), "--sizes", "CLS-M", "--frameworks", "mlstm",
         "--rounds", "1", "--reps", "CLS-M=1", "--settle", "0", "--out", str(out),
         "--no-chart"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((out / "bench.json").read_text())
    entry = results["sizes"]["CLS-M"]
    assert entry["shape"] == {"N": 64, "T": 50, "V": 10_000, "D": 32, "H": 128, "C": 10}
    assert entry["gemm_flops"] == classification.gemm_flops("CLS-M")
    for step in ("train", "forward"):
        stats = entry["frameworks"]["mlstm"][step]
        assert stats["n"] == 1 and 0 < stats["median_ms"] < 5000, stats
    assert "| CLS-M | train |" in (out / "table.md").read_text()


def _entry(mlstm_ms, others_ms, bound_ms, traced=None, keep=100):
    def stats(ms):
        return {"median_ms": ms}
    frameworks = {"mlstm": {"train": stats(mlstm_ms[0]), "forward_best": stats(mlstm_ms[1]),
                            "memory": {"traced_peak_bytes": traced}}}
    for fw, (train, forward) in others_ms.items():
        frameworks[fw] = {"train": stats(train), "forward_best": stats(forward)}
    return {"frameworks": frameworks, "gemm_bound_ms": {"train": bound_ms[0],
                                                        "forward": bound_ms[1]},
            "backward_must_keep_bytes": keep}


def test_targets_are_judged_from_medians_and_left_out_when_not_measured():
    results = {"sizes": {
        "M": _entry((20, 9), {"keras": (30, 12), "torch": (40, 8)}, (10, 5)),
        "L": _entry((300, 110), {"torch": (450, 100)}, (200, 80), traced=140),
    }}
    rows = {label: (round(value, 4), met) for label, value, _, met in bench.target_rows(results)}
    assert rows == {
        "M train ≤ 0.67× Keras": (round(20 / 30, 4), True),
        "M train ≤ 0.8× PyTorch": (0.5, True),
        "L train ≤ 0.8× PyTorch": (round(300 / 450, 4), True),
        "M forward ≤ 1.0× PyTorch": (1.125, False),
        "M forward ≤ 0.8× Keras": (0.75, True),
        "L forward ≤ 1.2× PyTorch": (1.1, True),
        "L train ≤ 1.6× GEMM bound": (1.5, True),
        "L peak memory ≤ 1.5× what backward must keep": (1.4, True),
    }
    table = bench.format_targets(results)
    assert "| M forward ≤ 1.0× PyTorch | 1.12 | no |" in table
