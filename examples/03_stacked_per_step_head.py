"""A stacked LSTM with a per-step head: sequence in, sequence out.

    x (N, T, 3) -> LSTM(16, return_sequences=True) -> LSTM(8, return_sequences=True)
                -> Dense(1) applied at every step -> y (N, T, 1)

The first LSTM hands its whole output sequence to the second; Dense on a 3-D input acts on
the last axis at each step (one weight matrix shared over time, as Keras' Dense does).
Task: at step t, the sum of feature 0 over the last three steps (a short memory).
Prints the layer shapes, the loss falling, and one sequence step by step. Runs in seconds.
"""
import numpy as np

import mlstm
from mlstm.optimizers import Adam

T, D = 12, 3
rng = np.random.default_rng(0)
mlstm.set_random_seed(0)


def make_data(n):
    x = rng.standard_normal((n, T, D)).astype("float32")
    padded = np.concatenate([np.zeros((n, 2)), x[:, :, 0]], axis=1)
    y = padded[:, 2:] + padded[:, 1:-1] + padded[:, :-2]     # x_t + x_{t-1} + x_{t-2}
    return x, y[..., None].astype("float32")


x_in = mlstm.Input(shape=(T, D), name="x")
h1 = mlstm.LSTM(16, return_sequences=True, name="lstm_1")(x_in)
h2 = mlstm.LSTM(8, return_sequences=True, name="lstm_2")(h1)
y_out = mlstm.Dense(1, name="per_step")(h2)
model = mlstm.Model(x_in, y_out, name="stacked")
model.compile(optimizer=Adam(1e-2), loss="mse", metrics=["mae"])
model.summary()
print("per_step kernel:", model.get_layer("per_step").get_weights()[0].shape,
      "- the same (8, 1) matrix at each of the", T, "steps\n")

x_train, y_train = make_data(800)
x_test, y_test = make_data(200)
history = model.fit(x_train, y_train, epochs=20, batch_size=32, seed=0, verbose=0)
loss = history.history["loss"]
print("training MSE by epoch:", " ".join(f"{v:.3f}" for v in loss[::3]), f"... {loss[-1]:.3f}")
print(f"target variance {np.var(y_train):.3f}; held-out MSE "
      f"{model.evaluate(x_test, y_test, verbose=0)[0]:.3f}\n")

pred = model.predict(x_test[:1])[0, :, 0]
print(" t   x_t[0]   target   predicted")
for t in range(T):
    print(f"{t:2d}  {x_test[0, t, 0]:7.3f}  {y_test[0, t, 0]:7.3f}  {pred[t]:9.3f}")
