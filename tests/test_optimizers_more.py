"""RMSprop, Adagrad, AdamW, Adamax and Nadam: Keras 3.15's exact forms.

Without Keras: each against a plain float64 transcription of the equations in its
docstring (loops over the steps, no in-place tricks), configs, state round trips, Nadam's
recomputed ``u_product``, refusals. With Keras (marked ``keras``): 5 steps of
``keras.optimizers.X(...).apply_gradients`` on tf.Variables against ``apply`` (1e-9 in
float64, 1e-6 relative in float32), Keras optimizer objects through ``get``, ``compile``
and the interop, and 3 training steps of a two-input, two-output model in both
frameworks (``crosscheck``, 1e-4 / 1e-9).
"""
import numpy as np
import pytest

import mlstm
from mlstm.optimizers import Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop, get

NEW = [RMSprop, Adagrad, AdamW, Adamax, Nadam]

#: (class, options): the option sets run against Keras and the transcriptions.
CASES = [
    (RMSprop, {}),
    (RMSprop, {"momentum": 0.9}),
    (RMSprop, {"centered": True}),
    (RMSprop, {"centered": True, "momentum": 0.5, "rho": 0.8, "learning_rate": 0.01,
               "epsilon": 1e-4}),
    (RMSprop, {"momentum": 0.3, "clipnorm": 1.0}),
    (Adagrad, {}),
    (Adagrad, {"initial_accumulator_value": 0.3, "learning_rate": 0.05, "epsilon": 1e-5}),
    (Adagrad, {"global_clipnorm": 2.0, "weight_decay": 0.05}),
    (AdamW, {}),
    (AdamW, {"weight_decay": 0.1, "amsgrad": True, "learning_rate": 0.01}),
    (AdamW, {"clipvalue": 0.5, "beta_1": 0.8}),
    (Adamax, {}),
    (Adamax, {"beta_1": 0.8, "beta_2": 0.95, "learning_rate": 0.01, "epsilon": 1e-4}),
    (Adamax, {"clipvalue": 0.3, "weight_decay": 0.02}),
    (Nadam, {}),
    (Nadam, {"beta_1": 0.8, "beta_2": 0.95, "learning_rate": 0.01, "epsilon": 1e-5}),
    (Nadam, {"clipnorm": 1.0, "weight_decay": 0.01}),
]


def _case_id(case):
    cls, options = case
    return cls.__name__ + ("-" + ",".join(options) if options else "")


def _problem(dtype=np.float64, seed=0, steps=5):
    """Three parameters and ``steps`` gradient sets of different scales (some entries
    large enough to be clipped, some zero)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 8)), rng.standard_normal((8,)),
              rng.standard_normal((2, 2))]
    grad_seq = [[rng.standard_normal(p.shape) * s for p, s in zip(params, (0.1, 3.0, 20.0))]
                for _ in range(steps)]
    if steps > 2:
        grad_seq[2][1][:3] = 0.0
    return ([p.astype(dtype) for p in params],
            [[g.astype(dtype) for g in grads] for grads in grad_seq])


def _run(opt, params, grad_seq):
    """``apply`` step by step; each returned update is checked to be new - old."""
    named = {f"p{k}": p.copy() for k, p in enumerate(params)}
    for grads in grad_seq:
        before = {k: v.copy() for k, v in named.items()}
        updates = opt.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
        assert set(updates) == set(named)
        for k in named:
            assert updates[k].dtype == named[k].dtype
            np.testing.assert_array_equal(updates[k], named[k] - before[k])
    return [named[f"p{k}"] for k in range(len(params))]


# --------------------------------------------------------------------------- transcriptions
def _f32(x):
    """A Python float through float32, as Keras' ``ops.cast(x, "float64")`` gives it."""
    return float(np.float32(x))


def _clip(grads, clipnorm=None, global_clipnorm=None, clipvalue=None):
    if clipnorm:
        return [g * clipnorm / max(np.sqrt(np.sum(g ** 2)), clipnorm) for g in grads]
    if global_clipnorm:
        norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
        return [g * min(1.0, global_clipnorm / norm) for g in grads]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    return grads


def transcribe(cls, options, params, grad_seq):
    """The docstring equations, float64, written independently of mlstm.optimizers."""
    o = dict(options)
    lr = o.pop("learning_rate", 0.001)
    wd = o.pop("weight_decay", 0.004 if cls is AdamW else None)
    clip = {k: o.pop(k) for k in ("clipnorm", "global_clipnorm", "clipvalue") if k in o}
    eps = o.pop("epsilon", 1e-7)
    params = [p.copy() for p in params]
    zeros = [np.zeros_like(p) for p in params]
    s1, s2, s3 = ([z.copy() for z in zeros] for _ in range(3))
    if cls is Adagrad:
        start = _f32(o.pop("initial_accumulator_value", 0.1))
        s1 = [np.full_like(p, start) for p in params]
    product = 1.0                                    # Nadam's Π_t
    for t, grads in enumerate(grad_seq, start=1):
        grads = _clip(grads, **clip)
        if wd:
            params = [p - p * _f32(wd) * lr for p in params]
        if cls is Nadam:
            b1 = o.get("beta_1", 0.9)
            product = product * b1 * (1 - 0.5 * 0.96 ** t)
        for k, g in enumerate(grads):
            if cls is RMSprop:
                rho, mu = o.get("rho", 0.9), o.get("momentum", 0.0)
                s1[k] = rho * s1[k] + (1 - rho) * g ** 2
                if o.get("centered"):
                    s2[k] = rho * s2[k] + (1 - rho) * g
                    d = s1[k] - s2[k] ** 2 + eps
                else:
                    d = s1[k] + eps
                increment = lr * g / np.sqrt(d)
                if mu > 0:
                    s3[k] = mu * s3[k] + increment
                    params[k] = params[k] - s3[k]
                else:
                    params[k] = params[k] - increment
            elif cls is Adagrad:
                s1[k] = s1[k] + g ** 2
                params[k] = params[k] - lr * g / np.sqrt(s1[k] + eps)
            elif cls is AdamW:
                b1, b2 = o.get("beta_1", 0.9), o.get("beta_2", 0.999)
                s1[k] = s1[k] + (g - s1[k]) * (1 - b1)
                s2[k] = s2[k] + (g ** 2 - s2[k]) * (1 - b2)
                v = s2[k]
                if o.get("amsgrad"):
                    s3[k] = np.maximum(s3[k], s2[k])
                    v = s3[k]
                alpha = lr * np.sqrt(1 - _f32(b2) ** t) / (1 - _f32(b1) ** t)
                params[k] = params[k] - alpha * s1[k] / (np.sqrt(v) + eps)
            elif cls is Adamax:
                b1, b2 = o.get("beta_1", 0.9), o.get("beta_2", 0.999)
                s1[k] = s1[k] + (g - s1[k]) * (1 - b1)
                s2[k] = np.maximum(b2 * s2[k], np.abs(g))
                params[k] = params[k] - lr * s1[k] / ((1 - _f32(b1) ** t) * (s2[k] + eps))
            elif cls is Nadam:
                b1, b2 = _f32(o.get("beta_1", 0.9)), _f32(o.get("beta_2", 0.999))
                mu_t = b1 * (1 - 0.5 * _f32(0.96) ** t)
                mu_next = b1 * (1 - 0.5 * _f32(0.96) ** (t + 1))
                s1[k] = s1[k] + (g - s1[k]) * (1 - b1)
                s2[k] = s2[k] + (g ** 2 - s2[k]) * (1 - b2)
                m_hat = (mu_next * s1[k] / (1 - product * mu_next)
                         + (1 - mu_t) * g / (1 - product))
                v_hat = s2[k] / (1 - b2 ** t)
                params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_the_transcription_of_its_equations(case):
    cls, options = case
    params, grad_seq = _problem(seed=1)
    expected = transcribe(cls, options, params, grad_seq)
    got = _run(cls(**options), params, grad_seq)
    for e, g, p in zip(expected, got, params):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
        assert not np.allclose(g, p)        # the steps moved every parameter


# --------------------------------------------------------------------------- configs, state
def test_registered_under_keras_names_and_aliases():
    from mlstm.registry import OPTIMIZERS
    for cls in NEW:
        assert OPTIMIZERS.get(cls.__name__) is cls
        assert OPTIMIZERS.get(cls.__name__.lower()) is cls
        assert cls.registered_name == cls.__name__
        for name in (cls.__name__, cls.__name__.lower(), cls.__name__.upper()):
            opt = get(name)
            assert type(opt) is cls and opt.get_config() == cls().get_config()
    assert Adam.registered_name == "Adam"          # AdamW's registration left Adam's alone


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_config_round_trip_takes_the_same_steps(case):
    cls, options = case
    opt = cls(**options)
    config = opt.get_config()
    assert config["name"] == cls.__name__.lower()
    for key, value in options.items():
        assert config[key] == value
    twin = cls.from_config(config)
    assert type(twin) is cls and twin.get_config() == config
    assert mlstm.optimizers.get(cls.__name__).get_config() == cls().get_config()
    params, grad_seq = _problem(np.float32, seed=2)
    for a, b in zip(_run(opt, params, grad_seq), _run(twin, params, grad_seq)):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_round_trip_continues_identically(case):
    cls, options = case
    params, grad_seq = _problem(np.float32, seed=3, steps=8)
    full = _run(cls(**options), params, grad_seq)
    first = cls(**options)
    named = {f"p{k}": p.copy() for k, p in enumerate(params)}
    for grads in grad_seq[:4]:
        first.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    state = first.get_state()
    assert state["iterations"] == 4
    assert all(v.dtype == np.float32 for k, v in state.items() if k != "iterations")
    resumed = cls.from_config(first.get_config())
    resumed.set_state(state)
    for grads in grad_seq[4:]:
        resumed.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    for k, p in enumerate(full):
        assert named[f"p{k}"].tobytes() == p.tobytes()


def test_the_state_each_one_keeps():
    params, grad_seq = _problem(seed=4, steps=1)
    expected = {RMSprop(): {"velocity"},
                RMSprop(momentum=0.5, centered=True): {"velocity", "momentum",
                                                       "average_gradient"},
                Adagrad(): {"accumulator"}, AdamW(): {"m", "v"},
                AdamW(amsgrad=True): {"m", "v", "v_hat"}, Adamax(): {"m", "u"},
                Nadam(): {"m", "v"}}
    for opt, slots in expected.items():
        _run(opt, params, grad_seq)
        keys = set(opt.get_state()) - {"iterations"}
        assert keys == {f"{s}/p{k}" for s in slots for k in range(3)}, (opt, keys)
    # Adagrad's accumulator started at float32(0.1) (Keras' Constant casts through float32)
    opt = Adagrad(initial_accumulator_value=0.1)
    opt.apply({"w": np.zeros(2)}, {"w": np.array([0.0, 1.0])})
    assert opt.get_state()["accumulator/w"].tolist() == [float(np.float32(0.1)),
                                                         float(np.float32(0.1)) + 1.0]


def _u_products(beta_1, steps, dtype):
    """Π_t for t = 1..steps by Keras' recursion, in ``dtype``, no cut-off."""
    d = np.dtype(dtype).type
    out, product = [], d(1.0)
    for t in range(1, steps + 1):
        product = product * d(beta_1) * (d(1.0) - d(0.5) * d(0.96) ** d(t))
        out.append(product)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nadam_u_product_is_keras_recursion_and_restored_from_the_step_count(dtype):
    exact = _u_products(0.9, 400, dtype)
    opt = Nadam()
    negligible = np.finfo(dtype).eps / 4
    cut = next(t for t, p in enumerate(exact, start=1) if p < negligible)
    for t in range(1, 401):
        got = opt.u_product(dtype, t)
        assert type(got) is np.dtype(dtype).type
        if t < cut:
            assert got == exact[t - 1], t          # the same bits, step by step
        else:
            assert got == 0.0 and exact[t - 1] < negligible
            assert np.dtype(dtype).type(1.0) - exact[t - 1] == 1.0    # 1 - Π is 1 either way
    # from scratch (a fresh optimizer, as after set_state): the same values
    assert Nadam().u_product(dtype, 30) == exact[29]
    assert Nadam().u_product(dtype, 2 ** 53) == 0.0          # bounded work: stops at the cut
    # A long run and a run restored late in it take the same steps (the cut is invisible).
    params, grad_seq = _problem(dtype, seed=5, steps=1)
    grad_seq = grad_seq * (cut + 20)
    full = _run(Nadam(0.01), params, grad_seq)
    first = Nadam(0.01)
    named = {f"p{k}": p.copy() for k, p in enumerate(params)}
    for grads in grad_seq[:cut - 5]:
        first.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    resumed = Nadam(0.01)
    resumed.set_state(first.get_state())
    for grads in grad_seq[cut - 5:]:
        resumed.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    for k, p in enumerate(full):
        assert named[f"p{k}"].tobytes() == p.tobytes()


def test_nadam_u_product_is_per_dtype_and_beta():
    opt = Nadam(beta_1=0.5)
    assert opt.u_product(np.float64, 2) == 0.5 * (1 - 0.5 * 0.96) * 0.5 * (1 - 0.5 * 0.96 ** 2)
    assert opt.u_product(np.float32, 1) == np.float32(0.5) * (np.float32(1)
                                                              - np.float32(0.5) * np.float32(0.96))
    opt.beta_1 = 0.9
    assert opt.u_product(np.float64, 1) == 0.9 * (1 - 0.5 * 0.96)
    assert opt.u_product(np.float64, 0) == 1.0


@pytest.mark.parametrize("make, match", [
    (lambda: RMSprop(rho=1.5), "rho must be in"),
    (lambda: RMSprop(momentum=-0.1), "momentum"),
    (lambda: RMSprop(epsilon=float("nan")), "epsilon"),
    (lambda: Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: AdamW(weight_decay=None), "AdamW: weight_decay must be a number"),
    (lambda: AdamW(beta_2=1.0), "beta_2"),
    (lambda: Adamax(beta_1=1.0), "Adamax: beta_1 must be in"),
    (lambda: Adamax(beta_2=-0.5), "beta_2"),
    (lambda: Nadam(beta_2=1.0), "Nadam: beta_2 must be in"),
    (lambda: Nadam(clipnorm=1.0, clipvalue=1.0), "Only one of"),
    (lambda: RMSprop(learning_rate="fast"), "learning_rate"),
])
def test_bad_settings_are_refused_by_name(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("cls", NEW, ids=lambda c: c.__name__)
def test_settings_that_cannot_be_finite_in_float32_are_refused(cls):
    opt = cls(epsilon=1e39)
    opt.check_dtype("float64")
    with pytest.raises(ValueError, match="epsilon = 1e\\+39 is beyond the range of float32"):
        opt.check_dtype("float32")
    params = {"w": np.ones(3, np.float32)}
    with pytest.raises(ValueError, match="float32"):
        opt.apply(params, {"w": np.ones(3, np.float32)})
    assert opt.iterations == 0 and np.array_equal(params["w"], np.ones(3, np.float32))


@pytest.mark.parametrize("cls", NEW, ids=lambda c: c.__name__)
def test_an_update_that_overflows_is_refused_and_nothing_changes(cls):
    opt = cls(learning_rate=3e38)
    params = {"a": np.ones(3, np.float32), "b": np.full(2, -3e38, np.float32)}
    before = {k: v.copy() for k, v in params.items()}
    with np.errstate(all="raise"):
        with pytest.raises(mlstm.validation.NonFiniteError, match="'b'"):
            opt.apply(params, {"a": np.full(3, 0.5, np.float32),
                               "b": np.full(2, 2.0, np.float32)})
    assert all(params[k].tobytes() == before[k].tobytes() for k in params)
    assert opt.get_state() == {"iterations": 0}


def test_a_model_trains_with_each_and_compile_refuses_what_it_cannot_use():
    mlstm.set_random_seed(0)
    x = mlstm.Input(shape=(4, 3), name="x")
    out = mlstm.Dense(1, name="out")(mlstm.LSTM(3, name="l")(x))
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(16, 4, 3)), rng.normal(size=(16, 1))
    for name in ("rmsprop", "adagrad", "adamw", "adamax", "nadam"):
        model = mlstm.Model(x, out)
        model.compile(optimizer=name, loss="mse")
        before = model.evaluate(xs, ys)
        model.fit(xs, ys, epochs=20, batch_size=16, verbose=0, shuffle=False)
        assert model.evaluate(xs, ys) < before, name
    with pytest.raises(ValueError, match="Unknown optimizer 'ftrl'"):
        mlstm.Model(x, out).compile(optimizer="ftrl", loss="mse")


# --------------------------------------------------------------------------- Keras
def _keras_steps(keras, cls, options, params, grad_seq, dtype):
    """5 steps of keras.optimizers.<cls>(**options).apply_gradients on tf.Variables, with
    floatx = dtype (Keras keeps the learning rate in a floatx variable)."""
    import tensorflow as tf
    from mlstm.interop.keras import keras_dtype

    with keras_dtype(dtype):
        opt = getattr(keras.optimizers, cls.__name__)(**options)
        variables = [tf.Variable(p) for p in params]
        for grads in grad_seq:
            opt.apply_gradients(zip([tf.constant(g) for g in grads], variables))
        return [v.numpy() for v in variables], opt


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    return _import_keras()


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_five_steps_agree_with_keras(keras, case, dtype):
    cls, options = case
    params, grad_seq = _problem(dtype)
    theirs, kopt = _keras_steps(keras, cls, options, params, grad_seq, dtype)
    mine = cls(**options)
    ours = _run(mine, params, grad_seq)
    for o, t, p in zip(ours, theirs, params):
        assert o.dtype == t.dtype == np.dtype(dtype)
        if dtype == "float64":
            np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-9)
        else:
            np.testing.assert_allclose(o, t, rtol=1e-6, atol=0)
        assert np.max(np.abs(t - p)) > 1e-5          # Keras moved it: not vacuous
    assert int(kopt.iterations.numpy()) == mine.iterations == 5
    if cls is Nadam:
        # Keras' u_product variable, against the recomputed one
        np.testing.assert_allclose(mine.u_product(np.dtype(dtype), 5),
                                   kopt._u_product.numpy(), rtol=1e-15 if dtype == "float64"
                                   else 1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("cls", NEW, ids=lambda c: c.__name__)
def test_defaults_are_keras_defaults(keras, cls):
    from mlstm.interop.keras import keras_dtype
    with keras_dtype("float64"):
        theirs = getattr(keras.optimizers, cls.__name__)().get_config()
    ours = cls().get_config()
    ours.pop("name")                 # Keras numbers its default names (rm_sprop_10)
    for key, value in ours.items():
        assert theirs[key] == value, key


@pytest.mark.keras
@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_keras_optimizer_object_gives_the_steps_of_its_mlstm_twin(keras, case, dtype):
    """get(keras.optimizers.X(**options)) is X(**options): same config (the learning rate
    as Keras holds it, in floatx) and the same steps, bit for bit (but for the decay rate's
    rounding in float32)."""
    from mlstm.interop.keras import keras_dtype
    cls, options = case
    with keras_dtype(dtype):
        kopt = getattr(keras.optimizers, cls.__name__)(**options)
    mapped = get(kopt)
    assert type(mapped) is cls
    expected = cls(**options).get_config()
    expected["learning_rate"] = float(np.dtype(dtype).type(expected["learning_rate"]))
    assert mapped.get_config() == expected
    assert get(type(kopt)).get_config() == cls().get_config()     # the class: defaults
    params, grad_seq = _problem(dtype, seed=6)
    twin = get(cls.__name__.lower()) if not options else cls(**options)
    decay = twin.weight_decay
    for a, b in zip(_run(mapped, params, grad_seq), _run(twin, params, grad_seq)):
        if decay and dtype == "float32":
            # the decay rate weight_decay · lr is formed in float64 before the cast: with
            # lr = float32(0.01) it may round to a neighbouring float32
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
        else:
            assert a.tobytes() == b.tobytes()


@pytest.mark.keras
def test_keras_optimizers_mlstm_cannot_map_are_refused_by_name(keras):
    class Custom(keras.optimizers.RMSprop):
        pass

    for spec, match in [
            (keras.optimizers.Ftrl(), "Keras optimizer 'Ftrl' has no mlstm counterpart"),
            (keras.optimizers.Lion(), "'Lion' has no mlstm counterpart.*RMSprop"),
            (Custom(), "custom Keras optimizer class 'Custom'"),
            (keras.optimizers.RMSprop(lambda: 0.01), "RMSprop: learning rate .* not supported"),
            (keras.optimizers.Nadam(use_ema=True), "Nadam: option use_ema=True"),
            (keras.optimizers.Adagrad(gradient_accumulation_steps=2),
             "gradient_accumulation_steps=2"),
            (keras.optimizers.AdamW(loss_scale_factor=128.0), "loss_scale_factor=128.0")]:
        with pytest.raises(ValueError, match=match):
            get(spec)
    # EMA settings without use_ema change nothing and are accepted
    assert type(get(keras.optimizers.Adamax(ema_momentum=0.5))) is Adamax


@pytest.mark.keras
def test_compile_takes_a_keras_optimizer_object(keras):
    x = mlstm.Input(shape=(4, 3), name="x")
    model = mlstm.Model(x, mlstm.Dense(1, name="out")(mlstm.LSTM(3, name="l")(x)))
    model.compile(optimizer=keras.optimizers.RMSprop(0.5, momentum=0.25, centered=True),
                  loss="mse")
    assert type(model.optimizer) is RMSprop
    assert (model.optimizer.momentum, model.optimizer.centered) == (0.25, True)
    with pytest.raises(ValueError, match="Ftrl"):
        model.compile(optimizer=keras.optimizers.Ftrl(), loss="mse")


def _demo(dtype, seed=0):
    """The two-input, two-output demo model (random weights) and one batch."""
    from mlstm.demo import build_demo_model
    from mlstm.data import make_demo_data
    model = build_demo_model(timesteps=5, features=(3, 2), units=4, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    d = make_demo_data(n_samples=8, timesteps=5, features=(3, 2), seed=seed, dtype=dtype)
    return model, [d["x1"], d["x2"]], [d["y1"], d["y2"]]


MODEL_CASES = [(RMSprop, {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
               (RMSprop, {"learning_rate": 0.01}),
               (Adagrad, {"learning_rate": 0.05, "initial_accumulator_value": 0.2}),
               (AdamW, {"learning_rate": 0.01, "weight_decay": 0.05, "clipnorm": 1.0}),
               (Adamax, {"learning_rate": 0.01, "beta_1": 0.8}),
               (Nadam, {"learning_rate": 0.01, "global_clipnorm": 1.0})]


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", MODEL_CASES, ids=_case_id)
def test_three_training_steps_agree_with_keras(keras, case, dtype):
    """crosscheck: to_keras carries the optimizer; forward, losses, gradients and the
    weights after 3 train_on_batch steps agree at 1e-4 (float32) / 1e-9 (float64)."""
    from mlstm.interop.keras import crosscheck, format_report, to_keras
    cls, options = case
    model, x, y = _demo(dtype)
    model.compile(optimizer=cls(**options), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    kmodel = to_keras(model)
    assert type(kmodel.optimizer).__name__ == cls.__name__
    kconfig = kmodel.optimizer.get_config()
    assert all(kconfig[k] == v for k, v in options.items() if k != "learning_rate")
    report = crosscheck(model, x, y, steps=3, as_dict=True, run_eagerly=True)
    assert report["ok"], format_report(report)
    assert report["dtype"] == dtype and len(report["steps"]) == 3
    assert report["rtol"] == (1e-4 if dtype == "float32" else 1e-9)
    # the weights moved between steps (the step comparison is not vacuous)
    first, last = model.get_weights(), None
    twin = model.clone()
    twin.train_on_batch(x, y)
    last = twin.get_weights()
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(first, last)) > 1e-4


@pytest.mark.keras
@pytest.mark.parametrize("case", MODEL_CASES[1:], ids=_case_id)
def test_keras_model_compiled_with_the_keras_optimizer_imports_and_agrees(keras, case):
    """From Keras: from_keras maps the compiled Keras optimizer (same config), and the
    cross-check started from the Keras side agrees (float64)."""
    from mlstm.interop.keras import crosscheck, format_report, from_keras, keras_dtype, to_keras
    cls, options = case
    model, x, y = _demo("float64", seed=1)
    model.compile(optimizer="sgd", loss=["mse", "binary_crossentropy"])
    kmodel = to_keras(model, compile=False)
    with keras_dtype("float64"):
        kmodel.compile(optimizer=getattr(keras.optimizers, cls.__name__)(**options),
                       loss=["mse", "binary_crossentropy"], loss_weights=[0.6, 0.4])
    imported = from_keras(kmodel)
    assert type(imported.optimizer) is cls
    assert imported.optimizer.get_config() == cls(**options).get_config()
    report = crosscheck(kmodel, x, y, steps=3, as_dict=True, run_eagerly=True)
    assert report["ok"] and report["started_as"] == "keras", format_report(report)


def test_every_registered_optimizer_has_its_equations_on_the_docs_page():
    """docs/optimizers.md names each registered optimizer in a ``Code:`` line linking its
    file (tests/test_docs.py checks that every such link resolves)."""
    import re
    from pathlib import Path

    from mlstm.registry import OPTIMIZERS
    page = (Path(__file__).resolve().parent.parent / "docs" / "optimizers.md").read_text(
        encoding="utf-8")
    named = {(m.group(1), m.group(2)) for line in page.splitlines() if line.startswith("Code:")
             for m in re.finditer(r"\[`([\w.]+)`\]\(\.\./([\w/.]+\.py)\)", line)}
    for cls in OPTIMIZERS.classes():
        path = "mlstm/optimizers/" + cls.__module__.rsplit(".", 1)[-1] + ".py"
        assert (f"mlstm.optimizers.{cls.__name__}", path) in named, cls.__name__
