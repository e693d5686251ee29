"""One training step of the seed's model, number by number.

A tiny copy of the two-input, two-output model (T=3, D=2, H=2, a batch of 4, float64 so
that the hand computations below agree with the library to the last digits):

1. forward: the gates i, f, c~, o of lstm_a at every step for one sample, and one step
   recomputed by hand from z = x W + h U + b;
2. the losses: out1 MSE, out2 BCE from the sigmoid head's logits, total = 0.7 L1 + 0.3 L2;
3. the gradient, split per output: each output's share of each weight's gradient
   (model.backward seeded with one output's loss gradient), summing to the total;
4. the Adam update of lstm_a/bias, recomputed from Keras' formula.

Prints every number next to its hand computation. Runs in about a second.
"""
import numpy as np

import mlstm
from mlstm.ops import lstm_step
from mlstm.optimizers import Adam

np.set_printoptions(precision=4, suppress=True)
T, D, H, N = 3, 2, 2, 4
mlstm.set_random_seed(0)
x1 = mlstm.Input(shape=(T, D), name="x1", dtype="float64")
x2 = mlstm.Input(shape=(T, D), name="x2", dtype="float64")
merged = mlstm.concatenate([mlstm.LSTM(H, name="lstm_a")(x1), mlstm.LSTM(H, name="lstm_b")(x2)])
out1 = mlstm.Dense(1, name="out1")(merged)
out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(merged)
model = mlstm.Model([x1, x2], [out1, out2])
model.compile(optimizer=Adam(1e-2), loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])

rng = np.random.default_rng(0)
xs = [rng.standard_normal((N, T, D)), rng.standard_normal((N, T, D))]
ys = [rng.standard_normal((N, 1)), (rng.random((N, 1)) < 0.5).astype(float)]

# ---------------------------------------------------------------- 1. forward, gates
tape = model.forward(xs, training=True)
node = next(k for k, n in enumerate(model.nodes) if n.layer.name == "lstm_a")
cache = tape.caches[node]                       # what lstm_backward will need
gates = cache["gates"]                          # (T, N, 4H): i, f, c~, o after activation
print("1. lstm_a, sample 0: gates per step (blocks of H=2: i | f | c~ | o)")
for t in range(T):
    i, f, g, o = np.split(gates[t, 0], 4)
    print(f"   t={t}: i {i}  f {f}  c~ {g}  o {o}   c_t {cache['c_states'][t + 1, 0]}"
          f"  h_t {cache['h_states'][t + 1, 0]}")
W, U, b = model.get_layer("lstm_a").get_weights()
h1, c1 = lstm_step(xs[0][:, 1], cache["h_states"][1], cache["c_states"][1], W, U, b)
print(f"   step t=1 by hand (z = x_1 W + h_0 U + b; c = f c_0 + i c~; h = o tanh c): "
      f"max |difference| {np.max(np.abs(h1 - cache['h_states'][2])):.1e}")

# ---------------------------------------------------------------- 2. losses
result = model.loss_and_output_grads(tape, ys)
p1 = tape.outputs[0]
logits = model.output_logits(tape, 1)           # out2's pre-activation a: p2 = σ(a)
L1 = np.mean((p1 - ys[0]) ** 2)
L2 = np.mean(np.maximum(logits, 0) - logits * ys[1] + np.log1p(np.exp(-np.abs(logits))))
print(f"\n2. out1 MSE {result.per_output[0]:.6f} (by hand {L1:.6f}); out2 BCE from logits "
      f"{result.per_output[1]:.6f} (by hand {L2:.6f})")
print(f"   total = 0.7·{L1:.4f} + 0.3·{L2:.4f} = {0.7 * L1 + 0.3 * L2:.6f} "
      f"(model: {result.total:.6f})")
print(f"   seeds of the backward pass: dL/d(out1) = 0.7·2(p1 - y1)/N = "
      f"{result.d_outputs[0].ravel()}")
print(f"                               dL/d(logits of out2) = 0.3·(σ(a) - y2)/N = "
      f"{result.d_logits[1].ravel()}")

# ---------------------------------------------------------------- 3. per-output gradients
total = model.backward(tape, result.d_outputs, result.d_logits)
share = [model.backward(tape, *result.for_output(k)) for k in range(2)]
print("\n3. each output's share of the gradient (the backward pass is linear in its seeds)")
print(f"   {'weight':<16}{'from out1':>22}{'from out2':>22}{'total':>22}")
for name in ("lstm_a/bias", "lstm_b/bias", "out1/bias", "out2/bias"):
    a, c, g = share[0][name], share[1][name], total[name]
    assert np.allclose(a + c, g, rtol=1e-12, atol=1e-15)
    print(f"   {name:<16}{np.linalg.norm(a):>22.6f}{np.linalg.norm(c):>22.6f}"
          f"{np.linalg.norm(g):>22.6f}")
print("   (norms; out1/bias gets nothing from out2 and out2/bias nothing from out1)")
g = total["lstm_a/bias"]
print("   d total / d lstm_a/bias by gate block:",
      "  ".join(f"{gate} {np.array2string(block)}" for gate, block in zip("ifco", np.split(g, 4))))

# ---------------------------------------------------------------- 4. the Adam update
before = model.get_layer("lstm_a").params["bias"].copy()
updates = model.optimizer.apply(model.trainable_params, total)
opt = model.optimizer
t = opt.iterations
m = (1 - opt.beta_1) * g                         # m ← m + (g - m)(1 - β1), from m = 0
v = (1 - opt.beta_2) * g ** 2                    # v ← v + (g² - v)(1 - β2), from v = 0
# Keras computes the bias corrections with β cast through float32 (even for float64
# weights); mlstm does the same, so we do too.
beta_1, beta_2 = float(np.float32(opt.beta_1)), float(np.float32(opt.beta_2))
alpha = opt.learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
by_hand = -alpha * m / (np.sqrt(v) + opt.epsilon)
print(f"\n4. Adam step {t} on lstm_a/bias (lr {opt.learning_rate}, ε {opt.epsilon}):")
with np.printoptions(precision=2, suppress=False):
    print(f"   m = (1-β1)·g  = {m}\n   optimizer's m = {opt.m['lstm_a/bias']}")
    print(f"   v = (1-β2)·g² = {v}\n   optimizer's v = {opt.v['lstm_a/bias']}")
print(f"   α = lr·sqrt(1-β2^t)/(1-β1^t) = {alpha:.6f}")
print(f"   update by hand  -α·m/(sqrt(v)+ε) = {by_hand}")
print(f"   update applied  (optimizer.apply) = {updates['lstm_a/bias']}")
print(f"   max |difference| {np.max(np.abs(by_hand - updates['lstm_a/bias'])):.1e}")
print(f"   at step 1 this is -lr·g/(|g| + ε/sqrt(1-β2)): about -lr·sign(g), except where |g| "
      f"is not far above ε/sqrt(1-β2) = {opt.epsilon / np.sqrt(1 - opt.beta_2):.1e} "
      f"(smallest: entry {np.argmin(abs(g))}, |g| = {np.min(abs(g)):.1e}, update "
      f"{by_hand[np.argmin(abs(g))]:.4f})")
after = model.get_layer("lstm_a").params["bias"]
print(f"   the bias moved from {before}\n                    to {after}")
