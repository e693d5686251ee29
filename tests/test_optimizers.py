"""Adam and SGD against a direct, line-by-line transcription of Keras 3.15's update rules.

The transcriptions below are written from keras/src/optimizers/{adam,sgd,base_optimizer}.py
independently of mlstm.optimizers (plain loops, float64), so a slip in either shows.
"""
import numpy as np
import pytest

import mlstm
from mlstm.optimizers import SGD, Adam, get


def _keras_clip(grads, clipnorm=None, global_clipnorm=None, clipvalue=None):
    if clipnorm:
        out = []
        for g in grads:
            l2 = np.sqrt(np.sum(g ** 2))
            out.append(g * clipnorm / max(l2, clipnorm))
        return out
    if global_clipnorm:
        use_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
        scale = global_clipnorm * min(1.0 / use_norm, 1.0 / global_clipnorm)
        return [g * scale for g in grads]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    return grads


def keras_adam(params, grad_seq, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
               amsgrad=False, weight_decay=None, **clip):
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    v_hat = [np.zeros_like(p) for p in params]
    for iteration, grads in enumerate(grad_seq):
        grads = _keras_clip(grads, **clip)
        if weight_decay:
            # Keras: variable - variable * ops.cast(wd) * lr, the Python float wd through
            # float32 (checked against keras.optimizers on float64 variables)
            params = [p - p * float(np.float32(weight_decay)) * lr for p in params]
        local_step = iteration + 1
        # Keras casts β with ops.cast(beta, dtype), which goes through float32 even for
        # float64 variables (checked against keras.optimizers.Adam on float64 variables).
        b1, b2 = float(np.float32(beta_1)), float(np.float32(beta_2))
        alpha = lr * np.sqrt(1 - b2 ** local_step) / (1 - b1 ** local_step)
        for k, g in enumerate(grads):
            m[k] = m[k] + (g - m[k]) * (1 - beta_1)
            v[k] = v[k] + (g ** 2 - v[k]) * (1 - beta_2)
            vk = v[k]
            if amsgrad:
                v_hat[k] = np.maximum(v_hat[k], v[k])
                vk = v_hat[k]
            params[k] = params[k] - (m[k] * alpha) / (np.sqrt(vk) + epsilon)
    return params


def keras_sgd(params, grad_seq, lr=0.01, momentum=0.0, nesterov=False, weight_decay=None,
              **clip):
    params = [p.copy() for p in params]
    ms = [np.zeros_like(p) for p in params]
    for grads in grad_seq:
        grads = _keras_clip(grads, **clip)
        if weight_decay:
            # Keras: variable - variable * ops.cast(wd) * lr, the Python float wd through
            # float32 (checked against keras.optimizers on float64 variables)
            params = [p - p * float(np.float32(weight_decay)) * lr for p in params]
        # Keras casts the momentum with ops.cast too: through float32
        mu = float(np.float32(momentum))
        for k, g in enumerate(grads):
            if momentum:
                ms[k] = ms[k] * mu - g * lr
                if nesterov:
                    params[k] = params[k] + (ms[k] * mu - g * lr)
                else:
                    params[k] = params[k] + ms[k]
            else:
                params[k] = params[k] - g * lr
    return params


def _problem(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 8)), rng.standard_normal((8,)), rng.standard_normal((2, 2))]
    # Gradients of different scales, some large enough to be clipped, some entries zero.
    grad_seq = [[rng.standard_normal(p.shape) * s for p, s in zip(params, (0.1, 3.0, 20.0))]
                for _ in range(steps)]
    grad_seq[2][1][:3] = 0.0
    return params, grad_seq


def _run(opt, params, grad_seq):
    named = {f"p{k}": p.copy() for k, p in enumerate(params)}
    all_updates = []
    for grads in grad_seq:
        before = {k: v.copy() for k, v in named.items()}
        updates = opt.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
        for k in named:
            np.testing.assert_allclose(updates[k], named[k] - before[k], rtol=0, atol=1e-15)
        all_updates.append(updates)
    return [named[f"p{k}"] for k in range(len(params))], all_updates


ADAM_CASES = [
    {},
    {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5},
    {"amsgrad": True},
    {"clipnorm": 1.0},
    {"global_clipnorm": 2.0},
    {"clipvalue": 0.5},
    {"weight_decay": 0.04},
    {"amsgrad": True, "weight_decay": 0.01, "global_clipnorm": 5.0},
]


@pytest.mark.parametrize("case", ADAM_CASES, ids=lambda c: ",".join(c) or "defaults")
def test_adam_matches_keras_transcription(case):
    params, grad_seq = _problem()
    expected = keras_adam(params, grad_seq, **case)
    kwargs = dict(case)
    lr = kwargs.pop("lr", 1e-3)
    got, _ = _run(Adam(learning_rate=lr, **kwargs), params, grad_seq)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    # The step must have moved the parameters (the comparison is not vacuous).
    assert not np.allclose(got[0], params[0])


SGD_CASES = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.5, "clipnorm": 1.0},
    {"lr": 0.1, "clipvalue": 0.3},
    {"momentum": 0.9, "weight_decay": 0.1, "global_clipnorm": 3.0},
]


@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: ",".join(c) or "defaults")
def test_sgd_matches_keras_transcription(case):
    params, grad_seq = _problem(1)
    expected = keras_sgd(params, grad_seq, **case)
    kwargs = dict(case)
    lr = kwargs.pop("lr", 0.01)
    got, _ = _run(SGD(learning_rate=lr, **kwargs), params, grad_seq)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got[2], params[2])


def test_adam_first_step_is_lr_times_sign():
    # With m and v from one gradient, the first Adam step is lr * g/(|g| + eps/sqrt(1-b2)),
    # up to Keras' bias corrections using β rounded to float32 (b1, b2 below).
    theta = {"w": np.array([1.0, -2.0, 3.0])}
    g = np.array([0.5, -4.0, 1e-3])
    updates = Adam(learning_rate=0.1).apply(theta, {"w": g})
    b1, b2 = float(np.float32(0.9)), float(np.float32(0.999))
    rounding = np.sqrt(1 - b2) / np.sqrt(1 - 0.999) * (1 - 0.9) / (1 - b1)
    expected = -0.1 * rounding * g / (np.abs(g) + 1e-7 / np.sqrt(1 - 0.999))
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-12)


def test_float32_state_stays_float32():
    theta = {"w": np.ones((2, 3), dtype=np.float32)}
    opt = Adam(amsgrad=True)
    updates = opt.apply(theta, {"w": np.full((2, 3), 0.5, dtype=np.float32)})
    assert theta["w"].dtype == np.float32 and updates["w"].dtype == np.float32
    for key, value in opt.get_state().items():
        if key != "iterations":
            assert value.dtype == np.float32, key


def test_state_roundtrip_continues_identically():
    params, grad_seq = _problem(2)
    full, _ = _run(Adam(amsgrad=True), params, grad_seq)
    opt = Adam(amsgrad=True)
    named = {f"p{k}": p.copy() for k, p in enumerate(params)}
    for grads in grad_seq[:3]:
        opt.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    resumed = Adam(amsgrad=True)
    resumed.set_state(opt.get_state())
    for grads in grad_seq[3:]:
        resumed.apply(named, {f"p{k}": g for k, g in enumerate(grads)})
    for k, p in enumerate(full):
        np.testing.assert_array_equal(named[f"p{k}"], p)


def test_optimizer_errors_are_clear():
    with pytest.raises(ValueError, match="Only one of"):
        Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="beta_1"):
        Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="Unknown optimizer 'ftrl'"):
        get("ftrl")
    opt = Adam()
    with pytest.raises(ValueError, match="shape"):
        opt.apply({"w": np.zeros(3)}, {"w": np.zeros(4)})
    with pytest.raises(ValueError, match="unknown parameter 'v'"):
        opt.apply({"w": np.zeros(3)}, {"v": np.zeros(3)})
    assert opt.iterations == 0


# --------------------------------------------------------------------------- registry
def test_optimizers_are_registered_under_keras_names_and_aliases():
    from mlstm import registry
    import mlstm.optimizers as optimizers
    assert registry.OPTIMIZERS.get("Adam") is Adam and registry.OPTIMIZERS.get("adam") is Adam
    assert registry.OPTIMIZERS.get("SGD") is SGD and registry.OPTIMIZERS.get("sgd") is SGD
    assert Adam.registered_name == "Adam" and SGD.registered_name == "SGD"
    for name, cls in [("adam", Adam), ("Adam", Adam), ("ADAM", Adam), ("sgd", SGD),
                      ("SGD", SGD)]:
        opt = get(name)
        assert type(opt) is cls and opt.get_config() == cls().get_config()
    instance = SGD(0.1)
    assert get(instance) is instance
    assert not hasattr(optimizers, "OPTIMIZERS")      # one table: the registry
    with pytest.raises(ValueError, match="optimizers: Adagrad, Adam, AdamW, Adamax, Nadam, "
                       "RMSprop, SGD, adagrad, adam, adamax, adamw, nadam, rmsprop, sgd"):
        get("ftrl")
    with pytest.raises(ValueError, match="Unknown optimizer 3"):
        get(3)


# --------------------------------------------------------------------------- finite steps
@pytest.mark.parametrize("make, label", [
    (lambda: Adam(1e39), "learning_rate = 1e+39"),
    (lambda: SGD(1e39), "learning_rate = 1e+39"),
    (lambda: Adam(1e20, weight_decay=1e20), "weight_decay * learning_rate = 1e+40"),
    (lambda: SGD(0.1, clipnorm=1e39), "clipnorm = 1e+39"),
    (lambda: Adam(epsilon=1e39), "epsilon = 1e+39")])
def test_settings_that_cannot_be_finite_in_float32_are_refused(make, label):
    opt = make()
    opt.check_dtype("float64")                       # finite in float64: accepted
    with pytest.raises(ValueError, match="float32") as info:
        opt.check_dtype("float32")
    assert label in str(info.value)
    params = {"w": np.ones(3, np.float32)}
    with pytest.raises(ValueError, match="beyond the range of float32"):
        opt.apply(params, {"w": np.ones(3, np.float32)})
    assert opt.iterations == 0 and np.array_equal(params["w"], np.ones(3, np.float32))


def test_learning_rate_is_checked_whenever_it_is_set():
    opt = Adam()
    for bad, kind in [(-1.0, ValueError), (float("nan"), ValueError), (10 ** 400, ValueError),
                      ("fast", TypeError), (True, TypeError)]:
        with pytest.raises(kind, match="learning_rate"):
            opt.learning_rate = bad
    assert opt.learning_rate == 0.001


def _state_bits(opt):
    return {k: (v.tobytes() if isinstance(v, np.ndarray) else v)
            for k, v in opt.get_state().items()}


def _two_params(dtype=np.float32):
    return {"a": np.full((2, 3), 1.0, dtype), "b": np.full(4, -3e38, dtype)}


@pytest.mark.parametrize("make", [lambda: Adam(3e38), lambda: SGD(3e38, momentum=0.5)],
                         ids=["adam", "sgd"])
def test_an_update_that_overflows_is_refused_and_nothing_changes(make):
    opt = make()
    params = _two_params()
    grads = {"a": np.full((2, 3), 0.5, np.float32), "b": np.full(4, 2.0, np.float32)}
    opt.apply({"a": params["a"].copy(), "b": np.zeros(4, np.float32)},      # a good step
              {k: g * np.float32(1e-3) for k, g in grads.items()})
    before = {k: v.copy() for k, v in params.items()}
    state = _state_bits(opt)
    with np.errstate(all="raise"):                    # and no NumPy warning on the way
        with pytest.raises(mlstm.validation.NonFiniteError) as info:
            opt.apply(params, grads)
    message = str(info.value)
    assert "'b'" in message and "-inf at index [0]" in message and "4 of 4" in message
    assert "'a'" not in message and "learning_rate=3e+38" in message, message
    assert "not applied" in message and info.value.iteration == 2
    assert "b" in info.value.updates and all(k.endswith("b") for k in info.value.updates)
    for k in params:
        assert params[k].tobytes() == before[k].tobytes()
    assert _state_bits(opt) == state and opt.iterations == 1


def test_a_state_that_overflows_is_refused_too():
    """Adam's v = g² overflows float32 for |g| > 1.8e19: θ stays finite (m/√v = 0) but v
    would be inf for ever; the step is refused, naming the state entry."""
    opt = Adam()
    params = {"w": np.ones(3, np.float32)}
    with pytest.raises(mlstm.validation.NonFiniteError, match="'v/w'"):
        opt.apply(params, {"w": np.array([1.0, 1e20, 1.0], np.float32)})
    assert opt.iterations == 0 and opt.get_state() == {"iterations": 0}
    assert np.array_equal(params["w"], np.ones(3, np.float32))


@pytest.mark.parametrize("exception", [MemoryError, KeyboardInterrupt, RuntimeError])
def test_an_exception_inside_a_step_leaves_it_not_taken(exception, monkeypatch):
    opt = Adam(0.1, amsgrad=True)
    params = {f"p{k}": np.full(5, float(k)) for k in range(4)}
    grads = {name: np.full(5, 0.3) for name in params}
    opt.apply(params, grads)
    before = {k: v.copy() for k, v in params.items()}
    state = _state_bits(opt)
    calls = []
    real_rule = Adam.rule

    def failing_rule(self, theta, g, current, step):
        calls.append(1)
        if len(calls) == 3:          # the third parameter: two are already computed
            raise exception()
        return real_rule(self, theta, g, current, step)

    monkeypatch.setattr(Adam, "rule", failing_rule)
    with pytest.raises(exception):
        opt.apply(params, grads)
    assert all(params[k].tobytes() == before[k].tobytes() for k in params)
    assert _state_bits(opt) == state and opt.iterations == 1
    monkeypatch.undo()
    twin = Adam(0.1, amsgrad=True)          # and the next step is the one it would have been
    twin_params = {k: v.copy() for k, v in before.items()}
    twin.set_state(opt.get_state())
    opt.apply(params, grads)
    twin.apply(twin_params, grads)
    assert all(params[k].tobytes() == twin_params[k].tobytes() for k in params)


def test_a_sigint_during_the_commit_is_delivered_after_it():
    import signal

    from mlstm.optimizers._interrupts import deferred_sigint
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_sigint():
            signal.raise_signal(signal.SIGINT)
            done.append("after the signal")      # the block runs to its end
            done.append("end of block")
    assert done == ["after the signal", "end of block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # an ignored SIGINT stays ignored
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_sigint():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_step_from_another_thread_does_not_touch_signal_handlers():
    import signal
    import threading

    seen = []

    def work():
        opt = Adam()
        params = {"w": np.ones(3)}
        opt.apply(params, {"w": np.ones(3)})
        seen.append((opt.iterations, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [(1, signal.default_int_handler)]


def test_iterations_are_bounded():
    from mlstm.optimizers import MAX_ITERATIONS
    opt = Adam()
    for bad in (10 ** 400, -1, True, 1.5, MAX_ITERATIONS + 1):
        with pytest.raises(ValueError, match="iterations"):
            opt.set_state({"iterations": bad})
    assert opt.iterations == 0
    opt.iterations = 10 ** 400                 # set by hand: refused at the step, unchanged
    params = {"w": np.ones(2)}
    with pytest.raises(ValueError, match="iterations"):
        opt.apply(params, {"w": np.ones(2)})
    assert opt.iterations == 10 ** 400 and np.array_equal(params["w"], np.ones(2))
    opt.set_state({"iterations": MAX_ITERATIONS})
    with pytest.raises(ValueError, match="at its limit"):
        opt.apply(params, {"w": np.ones(2)})
    opt.set_state({"iterations": MAX_ITERATIONS - 1})
    opt.apply(params, {"w": np.ones(2)})        # the last countable step is taken
    assert opt.iterations == MAX_ITERATIONS and np.isfinite(params["w"]).all()


def test_set_state_checks_everything_before_setting_anything():
    opt = Adam()
    opt.apply({"w": np.ones(2)}, {"w": np.ones(2)})
    state = _state_bits(opt)
    with pytest.raises(ValueError, match="'ghost/w'"):
        opt.set_state({"iterations": 5, "m/w": np.zeros(2), "ghost/w": np.zeros(2)})
    assert _state_bits(opt) == state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_rule_gives_the_bits_of_the_plain_formulas(dtype, amsgrad):
    """The rule finishes each new array in place; the plain expressions (as Keras writes
    them, and as mlstm computed them before) give the same bits."""
    rng = np.random.default_rng(3)
    opt = Adam(0.01, beta_1=0.85, beta_2=0.995, epsilon=1e-6, amsgrad=amsgrad)
    theta = rng.standard_normal((6, 5)).astype(dtype)
    state = {"m": rng.standard_normal((6, 5)).astype(dtype) * dtype(0.1),
             "v": rng.random((6, 5)).astype(dtype), "v_hat": rng.random((6, 5)).astype(dtype)}
    g = rng.standard_normal((6, 5)).astype(dtype)
    d = np.dtype(dtype).type
    b1, b2 = d(np.float32(0.85)), d(np.float32(0.995))
    alpha = d(0.01) * np.sqrt(1 - b2 ** d(7)) / (1 - b1 ** d(7))
    m = state["m"] + (g - state["m"]) * d(1 - 0.85)
    v = state["v"] + (np.square(g) - state["v"]) * d(1 - 0.995)
    v_used = np.maximum(state["v_hat"], v) if amsgrad else v
    expected = theta - alpha * m / (np.sqrt(v_used) + d(1e-6))
    copies = {k: a.copy() for k, a in state.items()}
    new_theta, new_state = opt.rule(theta.copy(), g, state if amsgrad else
                                    {"m": state["m"], "v": state["v"]}, 7)
    assert new_theta.tobytes() == expected.tobytes()
    assert new_state["m"].tobytes() == m.tobytes() and new_state["v"].tobytes() == v.tobytes()
    if amsgrad:
        assert new_state["v_hat"].tobytes() == v_used.tobytes()
    assert all(state[k].tobytes() == copies[k].tobytes() for k in state)   # not modified


@pytest.mark.keras
@pytest.mark.parametrize("make, keras_name, options", [
    (lambda: SGD(0.05, momentum=0.9), "SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    (lambda: SGD(0.05, momentum=0.9, nesterov=True), "SGD",
     {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    (lambda: Adam(0.01, weight_decay=0.3), "Adam", {"learning_rate": 0.01, "weight_decay": 0.3}),
], ids=["sgd_momentum", "sgd_nesterov", "adam_weight_decay"])
def test_float64_steps_are_keras_bit_for_bit(make, keras_name, options):
    """Keras takes the momentum and the weight decay through float32 (ops.cast of a Python
    float) even for float64 variables; mlstm does the same, so 10 float64 steps agree to
    the last bit (with the exact 0.9 they drifted apart by ~1e-9 in 3 steps)."""
    import keras
    from mlstm.interop.keras import keras_dtype
    params, grad_seq = _problem(3, steps=10)
    with keras_dtype("float64"):        # the learning rate variable in float64 too
        kvars = [keras.Variable(p.copy(), dtype="float64") for p in params]
        kopt = getattr(keras.optimizers, keras_name)(**options)
    for grads in grad_seq:
        kopt.apply([keras.ops.convert_to_tensor(g) for g in grads], kvars)
    got, _ = _run(make(), params, grad_seq)
    for k, (mine, theirs) in enumerate(zip(got, kvars)):
        np.testing.assert_array_equal(mine, np.asarray(theirs.numpy()), err_msg=f"p{k}")
