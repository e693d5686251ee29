"""The speed devices of mlstm.ops.lstm change nothing observable.

- BufferPool never hands out an array that a cache, a gradient or a view still uses;
- the (N, H) last-output gradient equals the zero-padded (N, T, H) sequence gradient;
- the one-tanh gate activation agrees with the exact sigmoid to float32 precision;
- skipping dL/dx (``input_grad=False``, what a model does for an LSTM fed by a model input)
  changes no other gradient;
- weight gradients summed a chunk of steps at a time (``keep_d_gates=False``) equal the
  whole-sequence sums, with masks, go_backwards and a last-step gradient.
"""
import numpy as np
import pytest
from scipy.special import expit

from mlstm.ops import lstm as lstm_module
from mlstm.ops.lstm import BUFFERS, GateActivation, lstm_backward, lstm_forward


def _args(rng, N=8, T=6, D=3, H=16, dtype=np.float32):
    return (rng.standard_normal((N, T, D)).astype(dtype),
            (rng.standard_normal((D, 4 * H)) / 2).astype(dtype),
            (rng.standard_normal((H, 4 * H)) / 4).astype(dtype),
            (rng.standard_normal(4 * H) / 4).astype(dtype))


def test_recycled_buffers_never_overwrite_what_is_still_referenced(monkeypatch):
    monkeypatch.setattr(BUFFERS, "min_bytes", 0)       # recycle even these small arrays
    rng = np.random.default_rng(0)
    x, *weights = _args(rng)
    (out, h, c), cache = lstm_forward(x, *weights)
    grads = lstm_backward(np.ones_like(h), None, None, cache)
    kept = {k: v.copy() for k, v in cache.items() if isinstance(v, np.ndarray)}
    kept_grads = {k: v.copy() for k, v in grads.items() if v is not None}
    last_output, expected_last = out[:, -1], out[:, -1].copy()   # a view keeps h_states
    del out, h, c
    pooled = BUFFERS.for_layer(weights[1])             # the arrays of this LSTM (its U)
    sizes = []
    for _ in range(4):                                  # same LSTM, same shapes: reuse
        (_, h2, _), cache2 = lstm_forward(_args(rng)[0], *weights)
        lstm_backward(np.ones_like(h2), None, None, cache2)
        del h2, cache2
        sizes.append(len(pooled.entries))
    # the held call's arrays, plus one set that the later calls take turns with
    assert sizes[1:] == sizes[:-1], sizes
    for k, v in kept.items():
        np.testing.assert_array_equal(cache[k], v, err_msg=k)
    for k, v in kept_grads.items():
        np.testing.assert_array_equal(grads[k], v, err_msg=k)
    np.testing.assert_array_equal(last_output, expected_last)


def test_last_output_gradient_equals_the_zero_padded_sequence():
    rng = np.random.default_rng(1)
    x, W, U, b = _args(rng, dtype=np.float64)
    mask = np.ones(x.shape[:2], dtype=bool)
    mask[0, -2:] = False
    for kwargs in ({}, {"mask": mask, "go_backwards": True}):
        (out, h, c), cache = lstm_forward(x, W, U, b, **kwargs)
        d_last = rng.standard_normal(h.shape)
        padded = np.zeros_like(out)
        padded[:, -1] = d_last
        got, want = (lstm_backward(d_last, None, None, cache),
                     lstm_backward(padded, None, None, cache))
        for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "d_h_steps", "d_gates"):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-13, atol=1e-15, err_msg=k)


def test_one_tanh_gates_match_sigmoid_and_tanh_in_float32():
    N, H = 4, 8
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((N, 4 * H)) * 8).astype(np.float32)
    gates = GateActivation("tanh", "sigmoid", N, H, np.float32)
    scale = np.repeat(np.array([.5, .5, 1, .5], np.float32), H)
    got = gates(z * scale)                              # the weights carry the scale
    want = np.concatenate([expit(z[:, :2 * H].astype(np.float64)),
                           np.tanh(z[:, 2 * H:3 * H].astype(np.float64)),
                           expit(z[:, 3 * H:].astype(np.float64))], axis=1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1.2e-7)


def test_skipping_the_input_gradient_changes_no_other_gradient():
    rng = np.random.default_rng(3)
    x, W, U, b = _args(rng, dtype=np.float64)
    (out, h, c), cache = lstm_forward(x, W, U, b, go_backwards=True)
    d_out = rng.standard_normal(out.shape)
    full = lstm_backward(d_out, None, None, cache)
    skipped = lstm_backward(d_out, None, None, cache, input_grad=False)
    assert skipped["x"] is None and full["x"].shape == x.shape
    assert set(skipped) == set(full)
    for k in set(full) - {"x"}:
        np.testing.assert_array_equal(skipped[k], full[k], err_msg=k)


def test_model_backward_asks_layers_only_for_the_input_gradients_it_keeps(monkeypatch):
    import mlstm
    from mlstm.layers import LSTM

    mlstm.set_random_seed(0)
    x1, x2 = mlstm.Input((5, 3)), mlstm.Input((5, 2))
    stacked = mlstm.LSTM(4, return_sequences=True, name="first")(x1)
    merged = mlstm.concatenate([mlstm.LSTM(4, name="second")(stacked),
                                mlstm.LSTM(4, name="other")(x2)])
    model = mlstm.Model([x1, x2], mlstm.Dense(1)(merged))
    asked = {}
    original = LSTM.backward

    def spy(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        asked[self.name] = list(input_grads)
        return original(self, d_outputs, cache, d_logits, extras, input_grads)

    monkeypatch.setattr(LSTM, "backward", spy)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 2))]
    model_64 = model.clone(np.float64)
    tape = model_64.forward(xs)
    seed = {0: np.ones((2, 1))}
    grads = model_64.backward(tape, seed)
    assert asked == {"first": [False], "second": [True], "other": [False]}
    grads_with_inputs, d_inputs = model_64.backward(tape, seed, input_grads=True)
    assert asked == {"first": [True], "second": [True], "other": [True]}
    assert [d.shape for d in d_inputs] == [(2, 5, 3), (2, 5, 2)]
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads_with_inputs[name], err_msg=name)


@pytest.mark.parametrize("chunk_steps", [1, 2, 5, 6])
@pytest.mark.parametrize("variant", ["plain", "masked_backwards", "last_output"])
def test_chunked_weight_gradients_equal_the_whole_sequence_sums(monkeypatch, chunk_steps,
                                                                 variant):
    N, T, H = 8, 6, 16
    monkeypatch.setattr(lstm_module, "GRADIENT_CHUNK_BYTES", chunk_steps * N * 4 * H * 8)
    rng = np.random.default_rng(5)
    x, W, U, b = _args(rng, N=N, T=T, H=H, dtype=np.float64)
    kwargs = {}
    if variant == "masked_backwards":
        mask = np.ones((N, T), dtype=bool)
        mask[0, -2:] = mask[1, :3] = False
        mask[2] = False
        kwargs = {"mask": mask, "go_backwards": True}
    (out, h, c), cache = lstm_forward(x, W, U, b, h0=rng.standard_normal((N, H)),
                                      c0=rng.standard_normal((N, H)), **kwargs)
    d_out = rng.standard_normal(h.shape if variant == "last_output" else out.shape)
    d_h, d_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    whole = lstm_backward(d_out, d_h, d_c, cache)
    chunked = lstm_backward(d_out, d_h, d_c, cache, keep_d_gates=False)
    assert chunked["d_gates"] is None and whole["d_gates"].shape == (T, N, 4 * H)
    for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "d_h_steps"):
        np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-13, atol=1e-14, err_msg=k)
