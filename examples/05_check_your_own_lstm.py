"""Test *your own* LSTM against mlstm with ``mlstm.testing.assert_matches``.

Below is a small LSTM written from scratch — plain NumPy, one loop over time, its own
backpropagation through time — the kind a student or a framework author writes. It shares
no code with mlstm. ``assert_matches`` draws weights and inputs (hypothesis), runs both, and
compares outputs and gradients. Then we break it twice on purpose:

1. the gate blocks are read in the order i, f, o, c (a common slip: Keras' order is
   i, f, c, o): the failure names the time step and the swapped gates;
2. the backward pass forgets the forget gate on the cell gradient: the failure names the
   parameter, the gate blocks and the time steps that are wrong.

Prints the passing check and both failure messages. Needs the test extra (hypothesis):
``pip install "mlstm[test]"``. Runs in a few seconds.
"""
import numpy as np

from mlstm import testing


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def my_lstm_forward(params, inputs, gate_order="ifco"):
    """My LSTM: x (N, T, D) -> hidden states (N, T, H). Keras layout: W (D, 4H), U, b."""
    x = inputs[0]
    W, U, b = params["lstm/kernel"], params["lstm/recurrent_kernel"], params["lstm/bias"]
    N, T, _ = x.shape
    H = U.shape[0]
    block = {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(gate_order)}
    h, c = np.zeros((N, H)), np.zeros((N, H))
    steps = []
    for t in range(T):
        z = x[:, t] @ W + h @ U + b
        i, f = sigmoid(z[:, block["i"]]), sigmoid(z[:, block["f"]])
        g, o = np.tanh(z[:, block["c"]]), sigmoid(z[:, block["o"]])
        c_prev, c = c, f * c + i * g
        h_prev, h = h, o * np.tanh(c)
        steps.append(dict(x=x[:, t], h_prev=h_prev, c_prev=c_prev, i=i, f=f, g=g, o=o, c=c))
    return np.stack([s_["o"] * np.tanh(s_["c"]) for s_ in steps], axis=1), steps


def my_lstm_backward(params, inputs, d_outputs, forget_the_forget_gate=False):
    """Backpropagation through time for :func:`my_lstm_forward` (gradients of <d_out, y>)."""
    W, U = params["lstm/kernel"], params["lstm/recurrent_kernel"]
    _, steps = my_lstm_forward(params, inputs)
    d_y = d_outputs[0]
    N, T, H = d_y.shape
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros(4 * H)
    dx = np.zeros(inputs[0].shape)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        s_ = steps[t]
        dh = d_y[:, t] + dh_next
        tanh_c = np.tanh(s_["c"])
        dc = dc_next + dh * s_["o"] * (1 - tanh_c ** 2)
        dz = np.concatenate([
            dc * s_["g"] * s_["i"] * (1 - s_["i"]),           # i
            dc * s_["c_prev"] * s_["f"] * (1 - s_["f"]),      # f
            dc * s_["i"] * (1 - s_["g"] ** 2),                # c (candidate)
            dh * tanh_c * s_["o"] * (1 - s_["o"]),            # o
        ], axis=1)
        dW += s_["x"].T @ dz
        dU += s_["h_prev"].T @ dz
        db += dz.sum(axis=0)
        dx[:, t] = dz @ W.T
        dh_next = dz @ U.T
        dc_next = dc if forget_the_forget_gate else dc * s_["f"]
    return {"lstm/kernel": dW, "lstm/recurrent_kernel": dU, "lstm/bias": db, "input:x": dx}


# The mlstm model my LSTM claims to compute: one LSTM(3), return_sequences, any length T.
CONFIG = {"units": 3, "features": 2, "timesteps": None, "activation": "tanh",
          "recurrent_activation": "sigmoid", "use_bias": True, "return_sequences": True,
          "return_state": False, "go_backwards": False, "masking": False,
          "initial_state": None}


def main():
    forward = lambda params, inputs: my_lstm_forward(params, inputs)[0]  # noqa: E731
    testing.assert_matches(CONFIG, forward, my_lstm_backward, max_examples=25)
    print("1. my LSTM matches mlstm: outputs and gradients (W, U, b and dL/dx) on 25 drawn "
          "cases (N, T from 1, random weights in every gate block)\n")

    swapped = lambda params, inputs: my_lstm_forward(params, inputs, "ifoc")[0]  # noqa: E731
    try:
        testing.assert_matches(CONFIG, swapped, max_examples=25)
    except AssertionError as error:
        print("2. gate blocks read as i, f, o, c -> assert_matches fails with:")
        print(f"{error}\n")
    else:
        raise SystemExit("the swapped gate order was not caught")

    def leaky_backward(params, inputs, d_outputs):
        return my_lstm_backward(params, inputs, d_outputs, forget_the_forget_gate=True)

    try:
        testing.assert_matches(CONFIG, forward, leaky_backward, max_examples=25)
    except AssertionError as error:
        print("3. backward without the forget gate on dc -> assert_matches fails with:")
        print(error)
    else:
        raise SystemExit("the wrong backward pass was not caught")


if __name__ == "__main__":
    main()
