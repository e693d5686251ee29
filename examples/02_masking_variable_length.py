"""Variable-length sequences with Masking, as Keras does it.

Sequences of 2..12 steps are padded with zeros to T = 12 (some at the end, "post", some at
the front, "pre") and fed through ``Masking(0.0)`` into an LSTM. Keras' rules (DESIGN.md),
which mlstm follows and this script shows number by number:

1. at a masked step the state (h, c) is carried unchanged;
2. the output at a masked step repeats the previous output (zeros before the first valid
   step), so the last output of a post-padded sequence is its last *valid* output;
3. how much padding there is does not change the result;
4. a loss over a masked per-step output averages over the valid steps only.

Then a small model learns the mean of each sequence's first feature over its valid steps.
Prints each rule with the numbers that show it. Runs in a few seconds.
"""
import numpy as np

import mlstm
from mlstm.optimizers import Adam

T, D, H = 12, 2, 8
rng = np.random.default_rng(0)
mlstm.set_random_seed(0)


def pad(sequences, length, where):
    """Zero-pad a list of (t, D) arrays to (N, length, D): ``where`` is "post" or "pre"."""
    out = np.zeros((len(sequences), length, sequences[0].shape[1]), dtype="float32")
    for n, s in enumerate(sequences):
        if where == "post":
            out[n, :len(s)] = s
        else:
            out[n, length - len(s):] = s
    return out


x = mlstm.Input(shape=(None, D), name="x")                  # any length T
masked = mlstm.Masking(0.0, name="masking")(x)
seq = mlstm.LSTM(H, return_sequences=True, name="lstm")(masked)
probe = mlstm.Model(x, seq, name="probe")

one = rng.standard_normal((5, D)).astype("float32")         # a sequence of 5 valid steps
post = pad([one], T, "post")
pre = pad([one], T, "pre")
short = pad([one], 5, "post")                                # no padding at all
y_post, y_pre, y_short = (probe.predict(a)[0] for a in (post, pre, short))

print("1-2. the sequence padded at the end (post): outputs per step (first unit)")
print("     ", np.round(y_post[:, 0], 4))
print("     steps 5..11 are masked: they repeat the output of step 4, the last valid one")
print("     the same sequence padded at the front (pre): outputs per step (first unit)")
print("     ", np.round(y_pre[:, 0], 4))
print("     steps 0..6 are masked and come before any valid step: zeros (not h0)")
print(f"3.   last output, post-padded to T=12 vs unpadded T=5: max |difference| = "
      f"{np.max(np.abs(y_post[-1] - y_short[-1])):.1e}; pre-padded: "
      f"{np.max(np.abs(y_pre[-1] - y_short[-1])):.1e}")

# 4. A per-step head: the loss averages over valid steps only.
head = mlstm.Dense(1, name="per_step")(seq)
per_step = mlstm.Model(x, head, name="per_step_model")
per_step.compile(loss="mse")
target = rng.standard_normal((1, T, 1)).astype("float32")
loss_padded = per_step.evaluate(post, target, verbose=0)
p = per_step.predict(post)
manual = np.mean((p[0, :5] - target[0, :5]) ** 2)
print(f"4.   per-step MSE on the post-padded sequence: {loss_padded:.6f}; the mean over its "
      f"5 valid steps only: {manual:.6f}")

# Train: predict the mean of feature 0 over the valid steps, sequences of 2..12 steps.
n = 600
lengths = rng.integers(2, T + 1, size=n)
seqs = [rng.standard_normal((t, D)).astype("float32") for t in lengths]
x_data = np.concatenate([pad(seqs[:n // 2], T, "post"), pad(seqs[n // 2:], T, "pre")])
y_data = np.array([[s[:, 0].mean()] for s in seqs], dtype="float32")
out = mlstm.Dense(1, name="mean")(mlstm.LSTM(H, name="lstm_mean")(masked))
model = mlstm.Model(x, out, name="running_mean")
model.compile(optimizer=Adam(1e-2), loss="mse")
history = model.fit(x_data, y_data, epochs=15, batch_size=32, seed=0, verbose=0)
losses = history.history["loss"]
print(f"\nlearning the mean over valid steps (half post-, half pre-padded): MSE "
      f"{losses[0]:.4f} -> {losses[-1]:.4f} in 15 epochs (target variance "
      f"{np.var(y_data):.4f})")
test = [rng.standard_normal((t, D)).astype("float32") for t in (3, 7, 12)]
for where in ("post", "pre"):
    preds = model.predict(pad(test, T, where)).ravel()
    print(f"  {where:>4}-padded, lengths 3, 7, 12: predicted {np.round(preds, 3)}, true "
          f"{np.round([s[:, 0].mean() for s in test], 3)}")
