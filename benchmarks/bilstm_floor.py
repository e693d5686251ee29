"""What BiLSTM-M's training step is made of, against the floor of one direction on one core.

    python benchmarks/bilstm_floor.py [rounds]

Times, in one process, interleaved (each part 5 calls per round after a 0.3 s pause, as
the side-by-side benchmark), medians and minima in ms:

- the mlstm training step of :mod:`bilstm`'s model (``train_on_batch``);
- the two directions' forward + backward at the same time (``parallel.run_concurrently``),
  what the step does for its LSTMs;
- one direction's forward + backward alone with single-threaded BLAS: the floor of each
  of the two threads;
- the GEMMs of one direction alone (input projection, the 2 x T step GEMMs, dU, dW), one
  thread: what is left when the elementwise gate math costs nothing.

docs/performance.md ("Bidirectional at M: the floor") quotes a run.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bilstm  # noqa: E402
from mlstm import parallel  # noqa: E402
from mlstm.ops.lstm import lstm_backward, lstm_forward  # noqa: E402


def parts(size: str = "BiLSTM-M") -> dict:
    """The timed calls: {label: function of no argument}."""
    case = bilstm.MlstmCase(size, 2)
    train = case.steps()["train"]
    layer = case.model.get_layer("bidirectional")
    s = bilstm.SIZES[size]
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    x = case.x

    def direction(lstm):
        p = lstm.params
        (out, _, _), cache = lstm_forward(x, p["kernel"], p["recurrent_kernel"], p["bias"],
                                          go_backwards=lstm.go_backwards)
        lstm_backward(out[:, -1], None, None, cache, input_grad=False, keep_d_gates=False)

    def both_directions():
        parallel.run_concurrently([lambda: direction(layer.forward_layer),
                                   lambda: direction(layer.backward_layer)])

    def one_direction():
        with parallel.single_threaded_blas():
            direction(layer.backward_layer)

    rng = np.random.default_rng(0)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x1, W1, h, U, dz, UT = f32(T * N, D + 1), f32(D + 1, 4 * H), f32(N, H), f32(H, 4 * H), \
        f32(N, 4 * H), f32(4 * H, H)
    h_all, dz_all, x_all = f32(H, T * N), f32(T * N, 4 * H), f32(D, T * N)
    z, dh = np.empty((N, 4 * H), np.float32), np.empty((N, H), np.float32)

    def gemms_only():
        with parallel.single_threaded_blas():
            x1 @ W1
            for _ in range(T):
                np.dot(h, U, out=z)
            for _ in range(T):
                np.dot(dz, UT, out=dh)
            h_all @ dz_all
            x_all @ dz_all

    return {"the training step (train_on_batch)": train,
            "the two directions' forward + backward, at the same time": both_directions,
            "one direction's forward + backward alone, 1 core": one_direction,
            "its GEMMs alone, 1 core": gemms_only}


def main(rounds: int = 6, calls: int = 5, pause: float = 0.3) -> None:
    timed = parts()
    samples = {label: [] for label in timed}
    for fn in timed.values():
        for _ in range(3):
            fn()
    loads = []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for label, fn in timed.items():
            time.sleep(pause)
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                samples[label].append(time.perf_counter() - t0)
    print(f"1-minute load average {min(loads):.2f}-{max(loads):.2f}; {rounds} rounds x {calls}")
    print("| part | median ms | min ms |\n|---|---|---|")
    for label, values in samples.items():
        print(f"| {label} | {np.median(values) * 1e3:.1f} | {min(values) * 1e3:.1f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
