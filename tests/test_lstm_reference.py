"""The textbook LSTM (mlstm.ops.lstm_reference) and the fast one (mlstm.ops.lstm) agree.

- hypothesis draws shapes and every option both support (masks with left and right padding
  and fully masked rows, go_backwards, initial states, gradients of the whole sequence or
  of the last output, of the final states, with or without bias, any activation pair, the
  fast path's chunked weight gradients): outputs, final states and every gradient agree;
- the reference's own step functions, chained by hand, give its whole-sequence results, and
  so do length-1 sequences chained through h0/c0 (go_backwards = the reversed sequence);
- float64 central differences of a random weighted sum of the reference's outputs and final
  states match its gradients for x, W, U, b, h0 and c0;
- its masked outputs follow Keras (zeros before the first valid step, state carried).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstm.gradcheck import numerical_gradient
from mlstm.ops import (ACTIVATIONS, lstm_backward, lstm_backward_reference, lstm_forward,
                       lstm_forward_reference, lstm_step_backward, lstm_step_forward)

GRADIENT_KEYS = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "d_h_steps",
                 "d_gates")


def _weights(rng, D, H, dtype=np.float64):
    # Distinct scales per gate block so that a gate-order slip changes the numbers.
    kernel = rng.standard_normal((D, 4 * H)) * np.repeat([0.3, 0.5, 0.7, 0.9], H)
    recurrent = rng.standard_normal((H, 4 * H)) * np.repeat([0.4, 0.2, 0.6, 0.8], H)
    bias = rng.standard_normal(4 * H) * 0.5 + np.repeat([0.0, 1.0, -0.5, 0.25], H)
    return kernel.astype(dtype), recurrent.astype(dtype), bias.astype(dtype)


def _mask(rng, N, T, kind):
    if kind == "none":
        return None
    if kind == "random":
        return rng.random((N, T)) < 0.6
    mask = np.ones((N, T), dtype=bool)
    mask[0, :T // 2] = False                   # left padding
    if N > 1:
        mask[1, T - T // 2:] = False           # right padding
    if N > 2:
        mask[2] = False                        # a fully masked row
    return mask


@st.composite
def _cases(draw):
    N, T = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    D, H = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    case = dict(
        N=N, T=T, D=D, H=H, seed=draw(st.integers(0, 2 ** 16)),
        mask=draw(st.sampled_from(["none", "random", "padded"])),
        go_backwards=draw(st.booleans()), initial_state=draw(st.booleans()),
        use_bias=draw(st.booleans()),
        d_outputs=draw(st.sampled_from(["sequence", "last", None])),
        d_states=draw(st.booleans()), keep_d_gates=draw(st.booleans()),
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        recurrent_activation=draw(st.sampled_from(sorted(ACTIVATIONS))))
    if case["d_outputs"] is None:
        case["d_states"] = True                # some gradient must flow
    return case


def _run(case, forward, backward):
    rng = np.random.default_rng(case["seed"])
    N, T, D, H = case["N"], case["T"], case["D"], case["H"]
    kernel, recurrent, bias = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0 = c0 = None
    if case["initial_state"]:
        h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    mask = _mask(rng, N, T, case["mask"])
    (outputs, h_last, c_last), cache = forward(
        x, kernel, recurrent, bias if case["use_bias"] else None, h0=h0, c0=c0, mask=mask,
        go_backwards=case["go_backwards"], activation=case["activation"],
        recurrent_activation=case["recurrent_activation"])
    d_outputs = {"sequence": rng.standard_normal((N, T, H)), "last": rng.standard_normal((N, H)),
                 None: None}[case["d_outputs"]]
    d_h_last, d_c_last = (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
    if not case["d_states"]:
        d_h_last = d_c_last = None
    grads = backward(d_outputs, d_h_last, d_c_last, cache, keep_d_gates=case["keep_d_gates"])
    return (outputs.copy(), h_last.copy(), c_last.copy()), grads


def _assert_close(got, want, name, rtol=1e-10):
    np.testing.assert_allclose(got, want, rtol=rtol,
                               atol=rtol * max(1.0, float(np.max(np.abs(want), initial=0))),
                               err_msg=name)


@settings(max_examples=150, deadline=None)
@given(case=_cases())
def test_reference_and_fast_path_agree_on_values_and_every_gradient(case):
    (ref_out, ref_h, ref_c), ref_grads = _run(case, lstm_forward_reference,
                                              lstm_backward_reference)
    (out, h, c), grads = _run(case, lstm_forward, lstm_backward)
    for name, got, want in (("outputs", out, ref_out), ("h_last", h, ref_h),
                            ("c_last", c, ref_c)):
        assert got.shape == want.shape and got.dtype == want.dtype == np.float64
        _assert_close(got, want, name)
    assert set(grads) == set(ref_grads) == set(GRADIENT_KEYS) - (
        set() if case["use_bias"] else {"bias"})
    for name in ref_grads:
        if name == "d_gates" and not case["keep_d_gates"]:
            assert grads[name] is None and ref_grads[name] is None
            continue
        assert grads[name].shape == ref_grads[name].shape, name
        _assert_close(grads[name], ref_grads[name], name)


@pytest.mark.parametrize("masked", [False, True])
def test_reference_and_fast_path_agree_in_float32(masked):
    rng = np.random.default_rng(7)
    N, T, D, H = 5, 8, 3, 6
    kernel, recurrent, bias = _weights(rng, D, H, np.float32)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    mask = _mask(rng, N, T, "padded") if masked else None
    results = []
    for forward, backward in ((lstm_forward_reference, lstm_backward_reference),
                              (lstm_forward, lstm_backward)):
        (out, h, c), cache = forward(x, kernel, recurrent, bias, mask=mask)
        d_out = np.linspace(-1, 1, out.size, dtype=np.float32).reshape(out.shape)
        grads = backward(d_out, None, None, cache)
        assert out.dtype == h.dtype == np.float32
        assert all(g.dtype == np.float32 for g in grads.values())
        results.append(({"outputs": out.copy(), "h_last": h.copy()}, grads))
    (ref_values, ref_grads), (values, grads) = results
    # float32: one rounding per operation, and the fast path's one-tanh sigmoid is within
    # 6e-8 of SciPy's; over 8 steps the two stay within a few 1e-6 of each other.
    for name in ref_values:
        _assert_close(values[name], ref_values[name], name, rtol=2e-5)
    for name in ref_grads:
        _assert_close(grads[name], ref_grads[name], name, rtol=2e-5)


@pytest.mark.parametrize("use_bias", [True, False])
def test_step_by_step_by_hand_equals_the_whole_sequence(use_bias):
    """What a learner writes: a loop of lstm_step_forward, then of lstm_step_backward."""
    rng = np.random.default_rng(1)
    N, T, D, H = 3, 5, 4, 3
    kernel, recurrent, bias = _weights(rng, D, H)
    bias = bias if use_bias else None
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    d_outputs = rng.standard_normal((N, T, H))
    d_h_last, d_c_last = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    h, c, step_caches, outputs = h0, c0, [], []
    for t in range(T):
        (h, c), step_cache = lstm_step_forward(x[:, t], h, c, kernel, recurrent, bias)
        step_caches.append(step_cache)
        outputs.append(h)
    d_h, d_c = d_h_last, d_c_last
    d_x = np.zeros_like(x)
    d_kernel, d_recurrent, d_bias = 0, 0, 0
    for t in range(T - 1, -1, -1):
        d_x[:, t], d_h, d_c, d_kernel_t, d_recurrent_t, d_bias_t = lstm_step_backward(
            d_h + d_outputs[:, t], d_c, step_caches[t])
        d_kernel, d_recurrent = d_kernel + d_kernel_t, d_recurrent + d_recurrent_t
        assert (d_bias_t is None) == (bias is None)
        d_bias = d_bias + d_bias_t if bias is not None else None

    (whole_out, whole_h, whole_c), cache = lstm_forward_reference(x, kernel, recurrent, bias,
                                                                  h0=h0, c0=c0)
    whole = lstm_backward_reference(d_outputs, d_h_last, d_c_last, cache)
    np.testing.assert_allclose(whole_out, np.stack(outputs, axis=1), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(whole_h, h, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(whole_c, c, rtol=1e-14, atol=1e-15)
    by_hand = {"x": d_x, "kernel": d_kernel, "recurrent_kernel": d_recurrent, "h0": d_h,
               "c0": d_c}
    if bias is not None:
        by_hand["bias"] = d_bias
    else:
        assert "bias" not in whole
    for name, value in by_hand.items():
        np.testing.assert_allclose(whole[name], value, rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_length_one_sequences_chained_through_initial_states_equal_the_whole(go_backwards):
    rng = np.random.default_rng(2)
    N, T, D, H = 2, 6, 3, 4
    kernel, recurrent, bias = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    d_outputs = rng.standard_normal((N, T, H))
    d_h_last, d_c_last = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    (out, h_last, c_last), cache = lstm_forward_reference(
        x, kernel, recurrent, bias, h0=h0, c0=c0, go_backwards=go_backwards)
    whole = lstm_backward_reference(d_outputs, d_h_last, d_c_last, cache)

    time_order = list(range(T - 1, -1, -1)) if go_backwards else list(range(T))
    h, c, caches = h0, c0, []
    for k, t in enumerate(time_order):
        (step_out, h, c), step_cache = lstm_forward_reference(x[:, t:t + 1], kernel,
                                                              recurrent, bias, h0=h, c0=c)
        np.testing.assert_allclose(out[:, k], step_out[:, 0], rtol=1e-14, atol=1e-15)
        caches.append(step_cache)
    np.testing.assert_allclose(h_last, h, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(c_last, c, rtol=1e-14, atol=1e-15)
    d_h, d_c = d_h_last, d_c_last
    sums = {"kernel": 0, "recurrent_kernel": 0, "bias": 0}
    d_x = np.zeros_like(x)
    for k in range(T - 1, -1, -1):
        step = lstm_backward_reference(d_outputs[:, k:k + 1], d_h, d_c, caches[k])
        d_h, d_c = step["h0"], step["c0"]
        d_x[:, time_order[k]] = step["x"][:, 0]
        for name in sums:
            sums[name] = sums[name] + step[name]
    for name, value in dict(sums, x=d_x, h0=d_h, c0=d_c).items():
        np.testing.assert_allclose(whole[name], value, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("activations", [("tanh", "sigmoid"), ("sigmoid", "tanh")])
@pytest.mark.parametrize("variant", ["plain", "masked_backwards", "last_output"])
def test_reference_gradients_against_float64_finite_differences(activations, variant):
    rng = np.random.default_rng(3)
    N, T, D, H = 3, 4, 3, 2
    kernel, recurrent, bias = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    kwargs = dict(activation=activations[0], recurrent_activation=activations[1])
    if variant == "masked_backwards":
        kwargs.update(mask=np.array([[False, True, True, False], [True, True, True, True],
                                     [False, False, False, False]]), go_backwards=True)
    # The scalar: a random weighted sum of the outputs and of both final states.
    w_out = rng.standard_normal((N, H) if variant == "last_output" else (N, T, H))
    w_h, w_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def scalar():
        (out, h_last, c_last), _ = lstm_forward_reference(x, kernel, recurrent, bias, h0=h0,
                                                          c0=c0, **kwargs)
        out = out[:, -1] if variant == "last_output" else out
        return np.sum(w_out * out) + np.sum(w_h * h_last) + np.sum(w_c * c_last)

    _, cache = lstm_forward_reference(x, kernel, recurrent, bias, h0=h0, c0=c0, **kwargs)
    grads = lstm_backward_reference(w_out, w_h, w_c, cache)
    for name, array in (("x", x), ("kernel", kernel), ("recurrent_kernel", recurrent),
                        ("bias", bias), ("h0", h0), ("c0", c0)):
        numeric = numerical_gradient(scalar, array)
        assert np.abs(numeric).max() > 1e-3, name          # the check has something to check
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-7, atol=1e-10, err_msg=name)


def test_reference_masking_follows_keras():
    rng = np.random.default_rng(4)
    N, T, D, H = 3, 5, 2, 3
    kernel, recurrent, bias = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    mask = _mask(rng, N, T, "padded")           # row 0 left-padded, 1 right-padded, 2 empty
    (out, h_last, c_last), _ = lstm_forward_reference(x, kernel, recurrent, bias, h0=h0,
                                                      c0=c0, mask=mask)
    np.testing.assert_array_equal(out[0, :T // 2], 0)          # zeros, not h0, before
    assert np.all(out[0, T // 2] != 0)                          # the first valid step
    last_valid = T - T // 2 - 1
    np.testing.assert_array_equal(out[1, last_valid + 1:], out[1, last_valid][None].repeat(
        T - last_valid - 1, axis=0))                            # the last output repeats
    np.testing.assert_array_equal(h_last[1], out[1, last_valid])
    np.testing.assert_array_equal(out[2], 0)                    # nothing valid: zeros, and
    np.testing.assert_array_equal(h_last[2], h0[2])             # the initial state carried
    np.testing.assert_array_equal(c_last[2], c0[2])
