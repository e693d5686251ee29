"""The side-by-side benchmark (mlstm.bench): its accounting, and one real run of mlstm at S.

The frameworks' columns are exercised by ``python benchmarks/run.py``; here the orchestrator,
the worker protocol, the tables and the JSON are run end to end with mlstm alone (seconds).
"""
import json
import subprocess
import sys

from mlstm import bench


def test_gemm_flops_counts_the_unavoidable_gemms_by_hand():
    size = {"N": 2, "T": 3, "D": 5, "H": 7, "O": (1, 4)}
    projection = 2 * 2 * 3 * 5 * 28           # x W, per LSTM
    recurrence = 2 * 2 * 3 * 7 * 28           # h U, per LSTM
    heads = 2 * 2 * 14 * 1 + 2 * 2 * 14 * 4   # concatenated 2H -> O1, O2
    forward = 2 * (projection + recurrence) + heads
    backward = 2 * (projection + 2 * recurrence) + 2 * heads   # dW; dU and dh_{t-1}; heads
    assert bench.gemm_flops(size) == {"forward": forward, "train": forward + backward}
    assert bench.backward_must_keep_bytes(size) == 2 * 3 * 2 * 6 * 7 * 4


def test_one_mlstm_run_at_size_s_writes_tables_and_json(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "mlstm", "bench", "--sizes", "S", "--frameworks", "mlstm",
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
