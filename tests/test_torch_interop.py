"""mlstm's LSTM against torch.nn.LSTM (CPU): weights carried both ways, forward and
gradients (weights, inputs, initial states) equal within 1e-10 in float64.

Every gate block gets its own weights and bias offset, so a gate-order slip shows.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm

pytestmark = pytest.mark.torch

_GATE_OFFSET = np.array([0.3, -0.4, 0.1, 0.5])


@pytest.fixture(scope="module")
def torch():
    from mlstm.interop.torch import _import_torch
    return _import_torch()


def _torch_lstm(torch, d, h, seed, dtype=None, bias=True):
    """nn.LSTM with random weights; each gate block of each bias has its own offset."""
    dtype = dtype or torch.float64
    torch.manual_seed(seed)
    module = torch.nn.LSTM(d, h, batch_first=True, bias=bias, dtype=dtype)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.6)
        if bias:
            offset = torch.tensor(np.repeat(_GATE_OFFSET, h), dtype=dtype)
            module.bias_ih_l0.add_(offset)
            module.bias_hh_l0.sub_(0.5 * offset)
    for w in (module.weight_ih_l0, module.weight_hh_l0):
        for a, b in itertools.combinations(torch.chunk(w.detach(), 4, dim=0), 2):
            assert not torch.allclose(a, b)
    return module


def _compare(torch, module, layer, n, t, seed, tol):
    """Forward and backward of the torch module and the mlstm layer on the same data."""
    rng = np.random.default_rng(seed)
    d, h = module.input_size, module.hidden_size
    dtype = layer.params["kernel"].dtype
    x, h0, c0 = (rng.normal(size=s).astype(dtype) for s in ((n, t, d), (n, h), (n, h)))
    d_seq, d_h, d_c = (rng.normal(size=s).astype(dtype) for s in ((n, t, h), (n, h), (n, h)))

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (hn, cn) = module(tx, (th0[None], tc0[None]))
    ((out * torch.tensor(d_seq)).sum() + (hn[0] * torch.tensor(d_h)).sum()
     + (cn[0] * torch.tensor(d_c)).sum()).backward()

    outputs, _, cache = layer.forward([x, h0, c0], [None, None, None])
    (d_x, d_h0, d_c0), grads = layer.backward([d_seq, d_h, d_c], cache)

    def close(mine, theirs, what):
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol, err_msg=what)

    close(outputs[0], out, "output sequence")
    close(outputs[1], hn[0], "h_n")
    close(outputs[2], cn[0], "c_n")
    close(grads["kernel"], module.weight_ih_l0.grad.T, "d kernel")
    close(grads["recurrent_kernel"], module.weight_hh_l0.grad.T, "d recurrent_kernel")
    if module.bias:
        close(grads["bias"], module.bias_ih_l0.grad, "d bias (= d bias_ih)")
        close(grads["bias"], module.bias_hh_l0.grad, "d bias (= d bias_hh)")
    close(d_x, tx.grad, "d x")
    close(d_h0, th0.grad, "d h0")
    close(d_c0, tc0.grad, "d c0")
    # Not vacuous: the gradients are far from zero.
    assert np.abs(grads["kernel"]).max() > 1e-3 and np.abs(d_h0).max() > 1e-3


def test_forward_and_gradients_match_torch_float64(torch):
    from mlstm.interop.torch import lstm_from_torch

    module = _torch_lstm(torch, d=3, h=4, seed=0)
    layer = lstm_from_torch(module, name="from_torch", return_state=True)
    assert layer.params["kernel"].dtype == np.float64
    _compare(torch, module, layer, n=5, t=7, seed=0, tol=1e-10)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 4), t=st.integers(1, 6), d=st.integers(1, 4), h=st.integers(1, 5),
       bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_randomized_shapes_match_torch(torch, n, t, d, h, bias, seed):
    from mlstm.interop.torch import lstm_from_torch

    module = _torch_lstm(torch, d=d, h=h, seed=seed, bias=bias)
    layer = lstm_from_torch(module, return_state=True)
    assert layer.use_bias is bias
    _compare(torch, module, layer, n=n, t=t, seed=seed, tol=1e-10)


def test_float32_forward_and_gradients(torch):
    from mlstm.interop.torch import lstm_from_torch

    module = _torch_lstm(torch, d=3, h=4, seed=1, dtype=torch.float32)
    layer = lstm_from_torch(module, return_state=True)
    assert layer.params["kernel"].dtype == np.float32
    _compare(torch, module, layer, n=4, t=5, seed=1, tol=1e-5)


def test_to_torch_from_a_model_layer_and_back(torch):
    from mlstm.interop.torch import lstm_from_torch, lstm_to_torch

    mlstm.set_random_seed(3)
    x_in = mlstm.Input((6, 3), name="x", dtype="float64")
    model = mlstm.Model(x_in, mlstm.LSTM(4, return_sequences=True, name="lstm")(x_in))
    layer = model.get_layer("lstm")
    rng = np.random.default_rng(3)
    layer.set_weights([w + rng.normal(0, 0.5, w.shape)
                       + (np.repeat(_GATE_OFFSET, 4) if w.ndim == 1 else 0)
                       for w in layer.get_weights()])
    module = lstm_to_torch(layer)
    assert module.batch_first and module.weight_ih_l0.dtype == torch.float64
    assert torch.all(module.bias_hh_l0 == 0)
    x = rng.normal(size=(2, 6, 3))
    expected = model.predict(x)
    out, _ = module(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    # ... and back: the same weights (the bias split does not matter).
    again = lstm_from_torch(module, name="again")
    for a, b in zip(again.get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Gradients agree for the module lstm_to_torch made, too.
    _compare(torch, module, lstm_from_torch(module, return_state=True), n=2, t=6, seed=4,
             tol=1e-10)


@pytest.mark.parametrize("kwargs,option", [
    ({"num_layers": 2}, "num_layers=2"),
    ({"bidirectional": True}, "bidirectional=True"),
    ({"proj_size": 2}, "proj_size=2"),
])
def test_from_torch_refuses_what_it_cannot_represent(torch, kwargs, option):
    from mlstm.interop.torch import lstm_from_torch

    with pytest.raises(ValueError, match=option):
        lstm_from_torch(torch.nn.LSTM(3, 4, **kwargs))


@pytest.mark.parametrize("kwargs,option", [
    ({"go_backwards": True}, "go_backwards=True"),
    ({"activation": "relu"}, "activation='relu'"),
    ({"recurrent_activation": "tanh"}, "recurrent_activation='tanh'"),
])
def test_to_torch_refuses_what_torch_cannot_compute(torch, kwargs, option):
    from mlstm.interop.torch import lstm_to_torch

    x_in = mlstm.Input((4, 2))
    layer = mlstm.LSTM(3, name="odd", **kwargs)
    layer(x_in)
    with pytest.raises(ValueError, match=f"'odd'.*{option}"):
        lstm_to_torch(layer)
    with pytest.raises(ValueError, match="not built"):
        lstm_to_torch(mlstm.LSTM(3, name="unbuilt"))


def test_to_torch_takes_only_the_layer_that_computes_keras_lstm(torch):
    """The LSTM is found through the registry (the class declaring keras_name "LSTM"): a
    Dense, or an LSTM subclass that does not declare it, is refused."""
    from mlstm.interop.torch import lstm_to_torch

    class Peephole(mlstm.LSTM):          # computes something else until it says otherwise
        pass

    x_in = mlstm.Input((4, 2))
    for layer in (mlstm.Dense(3, name="dense"), Peephole(3, name="peephole")):
        layer(x_in)
        with pytest.raises(TypeError, match=f"expects an mlstm.LSTM, got {type(layer).__name__}"):
            lstm_to_torch(layer)
