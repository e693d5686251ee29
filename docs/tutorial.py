# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why isn't my multi-input, multi-output LSTM learning? A tour of mlstm
#
# This notebook is kept as a plain Python file in the
# [jupytext](https://jupytext.readthedocs.io) "percent" format: open it in Jupyter with
# jupytext installed (`pip install "mlstm[docs]"`), convert it with
# `jupytext --to notebook docs/tutorial.py`, or run it as a script:
# `python docs/tutorial.py` (about half a minute on two cores). The tests run it, so every
# number printed below is what the code does today.
#
# The seed of mlstm is a question asked about Keras: *"Why isn't my Keras LSTM multi-input,
# multi-output model updating weights after each epoch?"* The model in question reads two
# sequences, runs an LSTM over each, concatenates the two final states and feeds two heads:
# a linear one (a regression target) and a sigmoid one (a binary target). The answer it got
# offers a custom loss as the "correct" fix. We build that model, train it properly, split
# its gradient by output, find the bug in the "correct" fix, and check the gradients.

# %%
import time
import warnings

import numpy as np

import mlstm
from mlstm import LSTM, Dense, Input, Model, concatenate
from mlstm.data import make_demo_data

started = time.perf_counter()

# %% [markdown]
# ## The data
#
# mlstm ships the seed's task as synthetic data (nothing is downloaded): two standard-normal
# sequences `x1`, `x2` of shape (N, T, D); `y1` is a regression target and `y2` a binary
# one, and each needs *both* sequences, so neither head can be learned from one LSTM alone.

# %%
T, D, H = 10, (8, 8), 16
train = make_demo_data(n_samples=512, timesteps=T, features=D, seed=0)
val = make_demo_data(n_samples=256, timesteps=T, features=D, seed=1)
x, y = [train["x1"], train["x2"]], [train["y1"], train["y2"]]
x_val, y_val = [val["x1"], val["x2"]], [val["y1"], val["y2"]]
print({name: array.shape for name, array in train.items()})
print(f"y2 is binary: {np.unique(train['y2'])}, mean {train['y2'].mean():.2f}")

# %% [markdown]
# ## The model
#
# The seed's model, written as in Keras. `mlstm.set_random_seed` makes the initial weights
# reproducible, so that the models below all start from the same point.

# %%
def build_seed_model(units=H, timesteps=T, features=D, dtype="float32"):
    """Two inputs, an LSTM on each, concatenated, a linear and a sigmoid head."""
    mlstm.set_random_seed(0)
    x1 = Input(shape=(timesteps, features[0]), name="x1", dtype=dtype)
    x2 = Input(shape=(timesteps, features[1]), name="x2", dtype=dtype)
    merged = concatenate([LSTM(units, name="lstm_a")(x1), LSTM(units, name="lstm_b")(x2)],
                         name="merged")
    out1 = Dense(1, name="out1")(merged)                         # linear head
    out2 = Dense(1, activation="sigmoid", name="out2")(merged)   # sigmoid head
    return Model(inputs=[x1, x2], outputs=[out1, out2], name="seed")


model = build_seed_model()
model.summary()

# %% [markdown]
# The same graph as a picture, drawn by `mlstm.plotting.plot_model` (matplotlib only):
#
# ![The seed's model: two inputs, an LSTM on each, concatenated, two heads](figures/seed_model.png)
#
# That picture is `docs/figures/seed_model.png`; the cell below draws the model we just
# built (in Jupyter it shows it; as a script it only says what it drew, into a temporary
# folder removed afterwards).

# %%
import tempfile
from pathlib import Path

from mlstm.plotting import plot_model

with tempfile.TemporaryDirectory() as folder:
    try:
        picture = plot_model(model, Path(folder) / "seed_model.png")
    except ImportError as missing:                              # matplotlib not installed
        print(missing)
    else:
        print(f"drew {picture.name}: {picture.stat().st_size // 1024} kB")
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:                                     # not in Jupyter
            pass
        else:
            if get_ipython() is not None:
                display(Image(filename=str(picture)))

# %% [markdown]
# ## Training it, one loss per output
#
# Keras (and mlstm) apply a loss **to each output separately**: a list gives one loss per
# output, `loss_weights` weighs them in the total
# `loss = 0.7 · mse(out1) + 0.3 · binary_crossentropy(out2)`. On a sigmoid head, binary
# cross-entropy is computed from the logits, as Keras does.

# %%
model.compile(optimizer=mlstm.optimizers.Adam(3e-3), loss=["mse", "binary_crossentropy"],
              loss_weights=[0.7, 0.3], metrics=[["mae"], ["binary_accuracy"]])
history = model.fit(x, y, epochs=8, batch_size=32, seed=0, verbose=0,
                    validation_data=(x_val, y_val))
h = history.history
for key in ("loss", "out1_loss", "out2_loss", "val_out2_binary_accuracy"):
    print(f"{key:26s} {h[key][0]:.3f} -> {h[key][-1]:.3f}")
assert h["out1_loss"][-1] < 0.6 * h["out1_loss"][0], "out1 should learn"
assert h["val_out2_binary_accuracy"][-1] > 0.75, "out2 should learn"

# %% [markdown]
# ## Which output pushes which weight?
#
# mlstm computes every gradient by hand, so it can split the gradient of the total loss into
# each output's part: `model.gradient_contributions(x, y)` returns
# `{output: {"layer/weight": gradient of loss_weight · loss of that output}}`, and the parts
# add up to `model.gradients(x, y)`. On the shared LSTM weights we see how much each head
# contributes and whether the two agree (cosine > 0) or pull apart (cosine < 0).

# %%
batch_x, batch_y = [a[:64] for a in x], [a[:64] for a in y]
parts = model.gradient_contributions(batch_x, batch_y)
total = model.gradients(batch_x, batch_y)
print(f"{'weight':28s} {'|out1|':>9s} {'|out2|':>9s} {'out1 share':>10s} {'cosine':>7s}")
for name in ("lstm_a/kernel", "lstm_a/recurrent_kernel", "lstm_b/kernel", "out1/kernel",
             "out2/kernel"):
    g1, g2 = parts["out1"][name].ravel(), parts["out2"][name].ravel()
    n1, n2 = np.linalg.norm(g1), np.linalg.norm(g2)
    cosine = f"{g1 @ g2 / (n1 * n2):7.2f}" if n1 * n2 > 0 else "      -"
    print(f"{name:28s} {n1:9.2e} {n2:9.2e} {n1 / (n1 + n2):10.1%} {cosine}")
    np.testing.assert_allclose(parts["out1"][name] + parts["out2"][name], total[name],
                               rtol=1e-4, atol=1e-7)
print("the per-output parts add up to the total gradient")

# %% [markdown]
# Each head's own kernel gets a gradient from its own loss only, while the LSTMs get both:
# here out1's share dominates, and on some weights the two heads pull in different
# directions (a negative cosine). `mlstm.diagnose` tracks these figures over training.
#
# ## The seed's "correct" fix, diagnosed
#
# The answer to the seed question calls `loss="mse"` for both heads *incorrect* and offers
# this custom loss, given once for the whole model, as the *correct* one (here line for line
# in NumPy: `K.mean` is `np.mean`):

# %%
from mlstm.losses import binary_crossentropy


def seed_custom_loss(y_true, y_pred):
    mse_output1 = np.mean(np.square(y_true[0] - y_pred[0]))
    bce_output2 = np.mean(binary_crossentropy(y_true[1], y_pred[1]))
    return 0.7 * mse_output1 + 0.3 * bce_output2


# %% [markdown]
# The author meant `y_true[0]` to be the first *output*. But a loss given once is applied to
# each output separately, with that output's `y_true` and `y_pred` of shape (batch, 1): so
# `y_true[0]` is the first *sample* of the batch, `y_true[1]` the second. `mlstm.diagnose`
# measures this instead of guessing: it trains a copy of the model for a few steps and reports
# what it finds, with the figure and a fix. (A plain-function loss is differentiated
# numerically, with a warning; we silence it here because we know.)

# %%
example2 = build_seed_model()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    example2.compile(optimizer=mlstm.optimizers.Adam(3e-3), loss=seed_custom_loss)
    report = mlstm.diagnose(example2, x, y, steps=128, batch_size=32, seed=0)
for finding in report.findings:
    print(f"[{finding.severity}] {finding.code}: {finding.title}")
    print(f"    {finding.message}")
    print(f"    fix: {finding.fix}\n")
codes = [finding.code for finding in report.findings]
assert "low_sample_coverage" in codes, codes

# %% [markdown]
# The custom loss reaches 1 or 2 samples of each batch of 32, so the model barely learns.
# On the validation data, the copy that `diagnose` trained (128 steps) against the model we
# trained above with one loss per output (8 epochs of 16 batches: 128 steps too, from the
# same initial weights):

# %%
def validation_scores(trained):
    p1, p2 = trained.predict(x_val, batch_size=256)
    return (float(np.mean(np.square(p1 - y_val[0]))),
            float(np.mean((p2 > 0.5) == (y_val[1] > 0.5))))


print(f"target variance of y1: {np.var(y_val[0]):.2f}; chance accuracy of out2: 0.5")
scores = {label: validation_scores(trained)
          for label, trained in (("seed's custom loss", report.trained_model),
                                 ("one loss per output", model))}
for label, (mse, accuracy) in scores.items():
    print(f"{label:20s} out1 MSE {mse:.3f}   out2 accuracy {accuracy:.3f}")
assert scores["one loss per output"][0] < 0.5 * scores["seed's custom loss"][0]

# %% [markdown]
# `python -m mlstm diagnose` runs the seed's three setups side by side (docs/diagnose.md).
#
# ## Checking the gradients
#
# Every backward pass in mlstm is written by hand, so it is checked against finite
# differences: `mlstm.gradcheck` clones the model to float64 and compares each parameter's
# (and each input's) gradient with a five-point central difference. A small model keeps
# it in a second. By default the check compares each array's gradient along a few random
# directions and drills down to single entries only where an array fails; `method="entries"`
# checks every entry (`help(mlstm.gradcheck)`).

# %%
small = build_seed_model(units=3, timesteps=4, features=(2, 3), dtype="float64")
small.compile(optimizer="adam", loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
data = make_demo_data(n_samples=5, timesteps=4, features=(2, 3), seed=2, dtype="float64")
check = mlstm.gradcheck(small, [data["x1"], data["x2"]], [data["y1"], data["y2"]])
print(check)
print(f"largest relative error {check.max_relative_error:.1e}")
assert check.ok(1e-6), check

# %%
print(f"tutorial ran in {time.perf_counter() - started:.1f} s")
