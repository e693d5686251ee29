"""The seed article's model, end to end: two sequences in, two heads out.

    x1 (N, T, 8) -> LSTM(16) --\\
                                concatenate -> Dense(1)            out1: regression, MSE
    x2 (N, T, 8) -> LSTM(16) --/            -> Dense(1, sigmoid)   out2: binary, BCE

loss = 0.7 · mse(out1) + 0.3 · binary_crossentropy(out2), Adam. Each loss sees only its own
output and target (as in Keras). Both targets need both inputs (see mlstm.data), so neither
head can be learned from one LSTM alone. Prints the per-output losses falling, then
evaluate / predict / gradients as a Keras user would call them. Runs in a few seconds.
"""
import numpy as np

import mlstm
from mlstm.data import make_demo_data
from mlstm.optimizers import Adam

T, D, H = 10, 8, 16
mlstm.set_random_seed(0)

x1 = mlstm.Input(shape=(T, D), name="x1")
x2 = mlstm.Input(shape=(T, D), name="x2")
merged = mlstm.concatenate([mlstm.LSTM(H, name="lstm_a")(x1), mlstm.LSTM(H, name="lstm_b")(x2)],
                           name="merged")
out1 = mlstm.Dense(1, name="out1")(merged)                          # linear head
out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(merged)    # sigmoid head
model = mlstm.Model(inputs=[x1, x2], outputs=[out1, out2], name="seed")
model.compile(optimizer=Adam(3e-3), loss=["mse", "binary_crossentropy"],
              loss_weights=[0.7, 0.3], metrics=[["mae"], ["binary_accuracy"]])
model.summary()

train = make_demo_data(n_samples=512, timesteps=T, features=(D, D), seed=0)
test = make_demo_data(n_samples=256, timesteps=T, features=(D, D), seed=1)
x_train, y_train = [train["x1"], train["x2"]], [train["y1"], train["y2"]]
x_test, y_test = [test["x1"], test["x2"]], [test["y1"], test["y2"]]

print("\nfit: 12 epochs, batch 32 (one line per epoch)")
history = model.fit(x_train, y_train, epochs=12, batch_size=32, seed=0, verbose=2)
h = history.history
print(f"\nout1 MSE  {h['out1_loss'][0]:.3f} -> {h['out1_loss'][-1]:.3f}  "
      f"(the target's variance is {np.var(train['y1']):.2f})")
print(f"out2 BCE  {h['out2_loss'][0]:.3f} -> {h['out2_loss'][-1]:.3f}, binary accuracy "
      f"{h['out2_binary_accuracy'][-1]:.2f}")
print(f"loss = 0.7·out1_loss + 0.3·out2_loss: {h['loss'][-1]:.4f} = "
      f"{0.7 * h['out1_loss'][-1] + 0.3 * h['out2_loss'][-1]:.4f}")

names = model.metrics_names
values = model.evaluate(x_test, y_test, verbose=0)
print("\nevaluate on held-out data (Keras' order):")
for name, value in zip(names, values):
    print(f"  {name:<22} {value:.4f}")

p1, p2 = model.predict([a[:3] for a in x_test])
print("\npredict, 3 samples:  out1", np.round(p1.ravel(), 3), " target",
      np.round(test["y1"][:3].ravel(), 3))
print("                     out2", np.round(p2.ravel(), 3), " target", test["y2"][:3].ravel())

grads = model.gradients([a[:32] for a in x_test], [a[:32] for a in y_test])
print("\ngradients(): d(total loss)/d(weight), e.g. the norms of the LSTM kernels:")
for name in ("lstm_a/kernel", "lstm_b/kernel"):
    print(f"  {name:<16} {grads[name].shape}  norm {np.linalg.norm(grads[name]):.4f}")
