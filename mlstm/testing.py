"""Property-based testing of LSTMs: mlstm's own, and anyone else's against mlstm.

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_, a *test-time*
dependency: install it with ``pip install "mlstm[test]"``. ``import mlstm`` never imports
this module (nor hypothesis); ``import mlstm.testing`` does.

Strategies (use them with ``@hypothesis.given``)
    :func:`lstm_configs`
        one LSTM layer: shapes (T, D, H, including 1) and options, a plain dict;
    :func:`model_configs`
        a multi-input / multi-output graph within size bounds, a plain dict;
    :func:`sequences`
        input arrays for a model or config, with optional padding masks (left, right,
        scattered, a fully masked row);
    :func:`targets`
        target arrays for a model's outputs, suited to each output's loss;
    :func:`cases`
        all of the above at once: a :class:`Case` (config, compiled model, x, y).

Builders
    :func:`build_model` (model config -> compiled Model), :func:`lstm_model` (LSTM config
    -> one-LSTM Model), :func:`randomize_weights`.

Assertions
    :func:`assert_gradients_close`
        the backward pass against finite differences in float64 (via
        :func:`mlstm.gradcheck`), failing with the parameter, gate block and time step;
    :func:`assert_matches`
        another implementation (forward, and optionally backward) against mlstm on drawn
        weights and inputs, failing with the output or parameter, the gate block (i/f/c/o),
        the time step, and the gate order that would make it match if it is a gate-order slip.

Configs are plain JSON-like dicts so that a failing example prints as something you can
read and paste back. A model config looks like::

    {"dtype": "float64", "timesteps": 3, "merge": True,
     "inputs": [{"name": "x0", "features": 2, "masking": True,
                 "lstms": [{"units": 2, "activation": "tanh",
                            "recurrent_activation": "sigmoid", "use_bias": True,
                            "return_sequences": False, "return_state": False,
                            "go_backwards": False, "initial_state": None}]}],
     "heads": [{"name": "out0", "source": 0, "units": 1, "activation": "sigmoid",
                "loss": "bce", "loss_weight": 0.3}]}

Each input gets an optional ``Masking(0.0)`` and a stack of LSTMs (all but the last with
``return_sequences=True``; ``initial_state`` is ``None``, ``"input"`` (h0/c0 are extra model
inputs ``<name>_h0``/``<name>_c0``) or ``"previous"`` (the states of the LSTM below, which
then has ``return_state=True``)). The *sources* heads read are each input's last LSTM output
and, with ``return_state``, its h and c; with ``merge`` the vector sources are concatenated
into one, and so are the sequence sources. Heads are Dense layers (per step on a sequence)
with a loss:

==================  ==========================================================
``"mse"``           mean squared error, any activation
``"bce"``           binary cross-entropy on a sigmoid head (computed from its logits)
``"bce_from_logits"``  ``BinaryCrossentropy(from_logits=True)`` on a linear head
``"bce_probabilities"`` sigmoid Dense then a Reshape: the clipped formula on probabilities
==================  ==========================================================

>>> from mlstm import testing
>>> model = testing.build_model(testing.SEED_MODEL_CONFIG)
>>> model.output_names
['out1', 'out2']
>>> [w.shape for w in model.get_layer("x1_lstm0").get_weights()]
[(3, 8), (2, 8), (8,)]
"""
from __future__ import annotations

import itertools

import numpy as np

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("mlstm.testing needs hypothesis, a test-time dependency: "
                      'pip install "mlstm[test]"') from exc

from . import losses as losses_module
from .gradcheck import Float64Problem, gradcheck
from .layers.lstm import GATES  # Keras' gate block order: i, f, c, o
from .layers import LSTM, Activation, Dense, Input, Masking, Reshape, concatenate
from .model import Model
from .ops.activations import ACTIVATIONS

__all__ = ["GATES", "SEED_MODEL_CONFIG", "HEAD_LOSSES", "lstm_configs", "model_configs",
           "sequences", "targets", "cases", "Case", "build_model", "lstm_model",
           "randomize_weights", "kink_distance", "gradcheck_caveats",
           "FINITE_DIFFERENCE_NOISE", "gate_block", "assert_gradients_close",
           "GradientMismatch", "assert_matches"]

#: Head losses a model config may use, and the head activations each one accepts.
HEAD_LOSSES = {
    "mse": ("linear", "sigmoid", "tanh", "relu"),
    "bce": ("sigmoid",),
    "bce_from_logits": ("linear",),
    "bce_probabilities": ("sigmoid",),
}

_ACTIVATION_NAMES = tuple(ACTIVATIONS)  # linear, sigmoid, tanh, relu

#: The seed article's model (two inputs, an LSTM each, concatenate, a linear MSE head and a
#: sigmoid BCE head, loss weights 0.7/0.3), small, as a config.
SEED_MODEL_CONFIG = {
    "dtype": "float64", "timesteps": 4, "merge": True,
    "inputs": [
        {"name": name, "features": 3, "masking": False,
         "lstms": [{"units": 2, "activation": "tanh", "recurrent_activation": "sigmoid",
                    "use_bias": True, "return_sequences": False, "return_state": False,
                    "go_backwards": False, "initial_state": None}]}
        for name in ("x1", "x2")],
    "heads": [
        {"name": "out1", "source": 0, "units": 1, "activation": "linear", "loss": "mse",
         "loss_weight": 0.7},
        {"name": "out2", "source": 0, "units": 1, "activation": "sigmoid", "loss": "bce",
         "loss_weight": 0.3}],
}

_LSTM_OPTIONS = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences",
                 "return_state", "go_backwards")


# =========================================================================== strategies
def _activations(default):
    # Mostly the Keras default, but every activation is reachable (and shrinks to the default).
    return st.one_of(st.just(default), st.sampled_from(_ACTIVATION_NAMES))


def _may(flag, draw):
    """A three-way switch: False never, "always" always, anything else drawn."""
    if flag is False or flag is None:
        return False
    if flag == "always":
        return True
    return draw(st.booleans())


@st.composite
def _lstm_options(draw, max_units, force):
    options = {
        "units": draw(st.integers(1, max_units)),
        "activation": draw(_activations("tanh")),
        "recurrent_activation": draw(_activations("sigmoid")),
        "use_bias": draw(st.booleans().map(lambda b: not b)),   # shrinks to True
        "return_sequences": draw(st.booleans()),
        "return_state": draw(st.booleans()),
        "go_backwards": draw(st.booleans()),
    }
    unknown = sorted(set(force or {}) - set(options))
    if unknown:
        raise ValueError(f"cannot force LSTM options {unknown}; forceable: {sorted(options)}")
    options.update(force or {})
    return options


@st.composite
def lstm_configs(draw, max_units=3, max_features=3, max_timesteps=4, masking=True,
                 initial_state=True, force=None, dtype="float64"):
    """Strategy: one LSTM layer's shapes and options, as a dict.

    Keys: ``units`` (H), ``features`` (D), ``timesteps`` (T), ``activation``,
    ``recurrent_activation``, ``use_bias``, ``return_sequences``, ``return_state``,
    ``go_backwards``, ``masking`` (a ``Masking(0.0)`` in front), ``initial_state``
    (``"input"`` or None) and ``dtype``. Every size starts at 1. Turn it into a model with
    :func:`lstm_model`.

    Parameters
    ----------
    max_units, max_features, max_timesteps : int
        Upper bounds of H, D and T.
    masking, initial_state : bool or "always"
        Drawn (True), never (False) or always.
    force : dict, optional
        LSTM options to fix instead of drawing, e.g. ``{"go_backwards": True}``.
    dtype : str

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, deadline=None)
    ... @given(lstm_configs(force={"units": 1}))
    ... def test_h_is_one(config):
    ...     assert config["units"] == 1
    >>> test_h_is_one()
    """
    config = draw(_lstm_options(max_units, force))
    config.update(
        features=draw(st.integers(1, max_features)),
        timesteps=draw(st.integers(1, max_timesteps)),
        masking=_may(masking, draw),
        initial_state="input" if _may(initial_state, draw) else None,
        dtype=dtype)
    return config


def _sources(config):
    """What heads can read: ``[(kind, [(input index, output index), ...]), ...]``.

    kind is ``"vec"`` (N, H) or ``"seq"`` (N, T, H); output index 0 is an input's last LSTM
    output, 1 and 2 its h and c states (with ``return_state``). With ``merge``, all vector
    members form one source and all sequence members another (when there are two or more).
    """
    members = {"vec": [], "seq": []}
    for b, branch in enumerate(config["inputs"]):
        last = branch["lstms"][-1]
        members["seq" if last["return_sequences"] else "vec"].append((b, 0))
        if last["return_state"]:
            members["vec"] += [(b, 1), (b, 2)]
    sources = []
    for kind in ("vec", "seq"):
        if config.get("merge") and len(members[kind]) >= 2:
            sources.append((kind, members[kind]))
        else:
            sources += [(kind, [m]) for m in members[kind]]
    return sources


@st.composite
def _lstm_stack(draw, depth, max_units, initial_state, force):
    stack = []
    for k in range(depth):
        layer = draw(_lstm_options(max_units, force))
        layer["initial_state"] = None
        if k < depth - 1:
            layer["return_sequences"] = True      # feeds the next LSTM
            if initial_state == "previous" and k == 0:
                layer["return_state"] = True
        if k == 0:
            if initial_state in ("input", "always") or (
                    initial_state is True and draw(st.booleans())):
                layer["initial_state"] = "input"
        elif stack[-1]["return_state"]:
            # The states of the layer below seed this one (encoder -> decoder).
            layer["initial_state"] = "previous"
            layer["units"] = stack[-1]["units"]
        stack.append(layer)
    return stack


@st.composite
def model_configs(draw, max_inputs=2, max_depth=2, max_units=3, max_features=3,
                  max_timesteps=4, max_output_units=2, max_extra_heads=1, min_inputs=1,
                  min_depth=1, masking=True, initial_state=True, merge=None, force=None,
                  losses=tuple(HEAD_LOSSES), head_activations=_ACTIVATION_NAMES,
                  dtype="float64"):
    """Strategy: a multi-input / multi-output LSTM graph within size bounds, as a dict.

    Draws ``min_inputs``..``max_inputs`` inputs (shared T, own D), each with an optional
    Masking and a stack of ``min_depth``..``max_depth`` LSTMs with drawn options; whether to
    concatenate; one head per source plus up to ``max_extra_heads`` more; each head's units,
    activation, loss and loss weight. The format is described in the module docstring; build
    the model with :func:`build_model`. Every size starts at 1.

    Parameters
    ----------
    max_inputs, max_depth, max_units, max_features, max_timesteps, max_output_units : int
        Size bounds.
    max_extra_heads, min_inputs, min_depth : int
    masking : bool or "always"
        Drawn per input (True), never, or on every input.
    initial_state : bool, "input" or "previous"
        Drawn (True), never, the first LSTM of every input starts from model inputs
        h0/c0 (``"input"``), or the second LSTM of every stack starts from the first's
        final states (``"previous"``, implies stacks of at least 2).
    merge : bool, optional
        Concatenate the sources (drawn when None).
    force : dict, optional
        LSTM options fixed on every LSTM, e.g. ``{"go_backwards": True}``.
    losses : sequence of str
        Head losses to draw from (:data:`HEAD_LOSSES`).
    head_activations : sequence of str
        Head activations to draw from (a loss is only drawn with an activation it accepts).
    dtype : str
    """
    losses = tuple(losses)
    unknown = sorted(set(losses) - set(HEAD_LOSSES))
    if not losses or unknown:
        raise ValueError(f"losses must be a non-empty subset of {sorted(HEAD_LOSSES)}, "
                         f"got {list(losses)}")
    pairs = [(loss, act) for loss in losses for act in HEAD_LOSSES[loss]
             if act in head_activations]
    if not pairs:
        raise ValueError(f"no head loss in {list(losses)} accepts an activation in "
                         f"{list(head_activations)}")
    if initial_state == "previous":
        min_depth = max(min_depth, 2)
        max_depth = max(max_depth, min_depth)
    timesteps = draw(st.integers(1, max_timesteps))
    n_inputs = draw(st.integers(min_inputs, max(min_inputs, max_inputs)))
    branches = []
    for b in range(n_inputs):
        depth = draw(st.integers(min_depth, max(min_depth, max_depth)))
        branches.append({
            "name": f"x{b}",
            "features": draw(st.integers(1, max_features)),
            "masking": _may(masking, draw),
            "lstms": draw(_lstm_stack(depth, max_units, initial_state, force)),
        })
    config = {"dtype": dtype, "timesteps": timesteps, "inputs": branches,
              "merge": draw(st.booleans()) if merge is None else bool(merge)}
    sources = _sources(config)
    picks = list(range(len(sources)))
    picks += draw(st.lists(st.integers(0, len(sources) - 1), max_size=max_extra_heads))
    heads = []
    for k, source in enumerate(picks):
        loss, activation = draw(st.sampled_from(pairs))
        heads.append({
            "name": f"out{k}",
            "source": source,
            "units": draw(st.integers(1, max_output_units)),
            "activation": activation,
            "loss": loss,
            "loss_weight": draw(st.sampled_from([1.0, 0.7, 0.3, 2.5])),
        })
    config["heads"] = heads
    return config


# =========================================================================== builders
def _head_loss(name):
    if name == "mse":
        return losses_module.MeanSquaredError()
    if name == "bce_from_logits":
        return losses_module.BinaryCrossentropy(from_logits=True)
    if name in ("bce", "bce_probabilities"):
        return losses_module.BinaryCrossentropy()
    raise ValueError(f"Unknown head loss {name!r}; valid: {sorted(HEAD_LOSSES)}")


def build_model(config, seed=0, weights="keras", optimizer="adam"):
    """A compiled :class:`mlstm.Model` from a :func:`model_configs` dict.

    Parameters
    ----------
    config : dict
        See the module docstring.
    seed : int
        Layer k's initializers are seeded with ``seed + k`` (reproducible, distinct).
    weights : {"keras", "random"}
        Keras' initializers, or :func:`randomize_weights` (every weight, biases included,
        drawn from a normal distribution: no zero or repeated gate blocks).
    optimizer : str or Optimizer

    Returns
    -------
    Model
        Inputs per branch: ``<name>`` (N, T, D), then ``<name>_h0``, ``<name>_c0`` (N, H) when
        its first LSTM takes ``initial_state="input"``; outputs named after the heads.
    """
    dtype = config.get("dtype", "float64")
    T = config["timesteps"]
    seeds = itertools.count(seed)
    model_inputs, branch_outputs = [], []
    for branch in config["inputs"]:
        name = branch["name"]
        x = Input(shape=(T, branch["features"]), name=name, dtype=dtype)
        model_inputs.append(x)
        h = Masking(0.0, name=f"{name}_masking")(x) if branch.get("masking") else x
        states = None
        for k, options in enumerate(branch["lstms"]):
            layer = LSTM(**{key: options[key] for key in _LSTM_OPTIONS},
                         name=f"{name}_lstm{k}", seed=next(seeds))
            initial = options.get("initial_state")
            if initial == "input":
                units = options["units"]
                h0 = Input(shape=(units,), name=f"{name}_h0", dtype=dtype)
                c0 = Input(shape=(units,), name=f"{name}_c0", dtype=dtype)
                model_inputs += [h0, c0]
                out = layer(h, initial_state=[h0, c0])
            elif initial == "previous":
                if states is None:
                    raise ValueError(f"config: {name}_lstm{k} takes initial_state='previous' "
                                     "but the LSTM below it has no return_state")
                out = layer(h, initial_state=states)
            elif initial is None:
                out = layer(h)
            else:
                raise ValueError(f"config: {name}_lstm{k}: initial_state must be None, 'input' "
                                 f"or 'previous', got {initial!r}")
            if options["return_state"]:
                h, states = out[0], out[1:]
            else:
                h, states = out, None
        branch_outputs.append([h] + (list(states) if states is not None else []))
    sources = []
    for kind, members in _sources(config):
        tensors = [branch_outputs[b][i] for b, i in members]
        sources.append(tensors[0] if len(tensors) == 1
                       else concatenate(tensors, name=f"merged_{kind}"))
    outputs, head_losses, loss_weights = [], [], []
    for head in config["heads"]:
        if head["activation"] not in HEAD_LOSSES.get(head["loss"], ()):
            raise ValueError(f"config: head {head['name']!r} has loss {head['loss']!r}, which "
                             f"needs activation in {HEAD_LOSSES.get(head['loss'])}, got "
                             f"{head['activation']!r}")
        source = sources[head["source"]]
        if head["loss"] == "bce_probabilities":
            # A Reshape after the sigmoid hides the logits: BCE then uses the clipped
            # probabilities (as Keras does when the sigmoid output is not the loss' input).
            p = Dense(head["units"], activation="sigmoid", name=f"{head['name']}_sigmoid",
                      seed=next(seeds))(source)
            out = Reshape(p.shape, name=head["name"])(p)
        else:
            out = Dense(head["units"], activation=head["activation"], name=head["name"],
                        seed=next(seeds))(source)
        outputs.append(out)
        head_losses.append(_head_loss(head["loss"]))
        loss_weights.append(float(head.get("loss_weight", 1.0)))
    model = Model(model_inputs, outputs, name="drawn")
    model.compile(optimizer=optimizer, loss=head_losses, loss_weights=loss_weights)
    if weights == "random":
        randomize_weights(model, seed)
    elif weights != "keras":
        raise ValueError(f"weights must be 'keras' or 'random', got {weights!r}")
    return model


def lstm_model(config, seed=0):
    """A one-LSTM :class:`mlstm.Model` from an :func:`lstm_configs` dict.

    Inputs: ``x`` (N, T, D) (``timesteps`` may be None: any T), then ``h0``, ``c0`` (N, H)
    with ``initial_state="input"``. A ``Masking(0.0)`` named ``masking`` sits in front when
    ``masking``. The LSTM is named ``lstm`` (parameters ``lstm/kernel``,
    ``lstm/recurrent_kernel``, ``lstm/bias``); outputs are its outputs (with
    ``return_state``: the output, h and c).
    """
    dtype = config.get("dtype", "float64")
    x = Input(shape=(config.get("timesteps"), config["features"]), name="x", dtype=dtype)
    inputs = [x]
    h = Masking(0.0, name="masking")(x) if config.get("masking") else x
    layer = LSTM(**{key: config[key] for key in _LSTM_OPTIONS if key in config}, name="lstm",
                 seed=seed)
    if config.get("initial_state") == "input":
        h0 = Input(shape=(config["units"],), name="h0", dtype=dtype)
        c0 = Input(shape=(config["units"],), name="c0", dtype=dtype)
        inputs += [h0, c0]
        out = layer(h, initial_state=[h0, c0])
    else:
        out = layer(h)
    return Model(inputs if len(inputs) > 1 else x, out, name="lstm_model")


def randomize_weights(model, seed, scale=0.6):
    """Set every parameter to ``scale`` × standard normal draws (seeded), in place.

    Unlike Keras' initial weights (zero biases, forget bias 1), no two gate blocks share
    values, so a gate-order slip in another implementation changes the numbers.
    """
    rng = np.random.default_rng(seed)
    for array in model.params.values():
        array[...] = scale * rng.standard_normal(array.shape)
    return model


def _as_model(obj):
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, dict) and "inputs" in obj and "heads" in obj:
        return build_model(obj)
    if isinstance(obj, dict) and "units" in obj:
        return lstm_model(obj)
    raise TypeError("expected an mlstm Model, a model_configs() dict or an lstm_configs() "
                    f"dict, got {type(obj).__name__}")


# =========================================================================== data
def _input_specs(model):
    """Per model input: ``(name, shape without N, mask_value or None, dtype)``."""
    mask_values = {}
    for node in model.nodes:
        if isinstance(node.layer, Masking):
            mask_values[id(node.inputs[0])] = node.layer.mask_value
    return [(name, t.shape, mask_values.get(id(t)), t.dtype)
            for name, t in zip(model.input_names, model.inputs)]


@st.composite
def _inputs_and_description(draw, model, max_batch=3, max_timesteps=4, padding=None,
                            fully_masked_row=True):
    model = _as_model(model)
    specs = _input_specs(model)
    N = draw(st.integers(1, max_batch))
    free_T = draw(st.integers(1, max_timesteps))     # for inputs declared with T = None
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    xs, notes = [], [f"N={N}"]
    for name, shape, mask_value, dtype in specs:
        shape = tuple(free_T if d is None else d for d in shape)
        x = rng.standard_normal((N,) + shape)
        if mask_value is not None and len(shape) == 2:
            T = shape[0]
            mode = draw(st.sampled_from(padding or ("none", "right", "left", "scattered")))
            if mode == "scattered":
                valid = rng.random((N, T)) < 0.6
            else:
                lengths = np.array(draw(st.lists(st.integers(1, T), min_size=N, max_size=N)))
                steps = np.arange(T)
                if mode == "right":      # valid steps first, padding at the end
                    valid = steps[None, :] < lengths[:, None]
                elif mode == "left":     # padding first, valid steps at the end
                    valid = steps[None, :] >= T - lengths[:, None]
                else:
                    valid = np.ones((N, T), dtype=bool)
            note = f"{name}: T={T}, {mode} padding"
            if _may(fully_masked_row, draw):
                row = draw(st.integers(0, N - 1))
                valid[row] = False
                note += f", row {row} fully masked"
            x[~valid] = mask_value
            note += f", valid steps per row {valid.sum(axis=1).tolist()}"
            notes.append(note)
        elif len(shape) == 2:
            notes.append(f"{name}: T={shape[0]}")
        xs.append(x.astype(dtype))
    return xs, "; ".join(notes)


def sequences(model, max_batch=3, max_timesteps=4, padding=None, fully_masked_row=True):
    """Strategy: a list of input arrays for ``model``, in model input order.

    Values are standard normal (from a drawn seed, so no accidental zeros). An input that
    feeds a ``Masking`` layer gets padded steps set to its ``mask_value``: drawn per input
    from ``padding`` (default all of ``"none"``, ``"right"`` (valid steps first),
    ``"left"`` (valid steps last), ``"scattered"``), with drawn lengths, and possibly one
    fully masked row.

    Parameters
    ----------
    model : Model, or a :func:`model_configs` / :func:`lstm_configs` dict
    max_batch : int
        N is drawn in [1, max_batch].
    max_timesteps : int
        T for inputs declared with ``timesteps=None``.
    padding : sequence of str, optional
    fully_masked_row : bool or "always"
        Whether one row of each masked input may be (always be) fully masked.
    """
    return _inputs_and_description(model, max_batch, max_timesteps, padding,
                                   fully_masked_row).map(lambda pair: pair[0])


def _loss_kind(model, k):
    loss = model._losses[k] if getattr(model, "compiled", False) else None
    return "bce" if isinstance(loss, losses_module.BinaryCrossentropy) else "mse"


@st.composite
def targets(draw, model, x):
    """Strategy: a list of target arrays for ``model``'s outputs on inputs ``x``.

    Shapes come from a forward pass on ``x``. Outputs with binary cross-entropy get labels
    in [0, 1] (hard 0/1 or soft, drawn); others standard normal.
    """
    outputs = model.forward(model._inputs(x)).outputs
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    ys = []
    for k, out in enumerate(outputs):
        if _loss_kind(model, k) == "bce":
            y = (rng.random(out.shape) if draw(st.booleans())
                 else (rng.random(out.shape) < 0.5).astype(float))
        else:
            y = rng.standard_normal(out.shape)
        ys.append(y.astype(out.dtype))
    return ys


class Case:
    """One drawn test case: ``config``, compiled ``model``, inputs ``x``, targets ``y``.

    ``description`` says N, T and how each masked input is padded. The repr shows the config
    and the description (the model and arrays are rebuilt from them).
    """

    def __init__(self, config, model, x, y, description, seed, weights):
        self.config, self.model, self.x, self.y = config, model, x, y
        self.description, self.seed, self.weights = description, seed, weights

    def __repr__(self):
        return (f"Case(config={self.config!r}, seed={self.seed}, weights={self.weights!r}, "
                f"data: {self.description})")


@st.composite
def cases(draw, configs=None, max_batch=3, weights=("keras", "random"), padding=None,
          fully_masked_row=True):
    """Strategy: a :class:`Case` — config, compiled float64 model, inputs and targets.

    Parameters
    ----------
    configs : strategy, optional
        Of model configs; :func:`model_configs` by default.
    max_batch : int
    weights : sequence of {"keras", "random"}
        How the weights are set (see :func:`build_model`).
    padding, fully_masked_row
        As for :func:`sequences`.
    """
    config = draw(configs if configs is not None else model_configs())
    seed = draw(st.integers(0, 2 ** 16))
    weight_mode = draw(st.sampled_from(tuple(weights)))
    model = build_model(config, seed=seed, weights=weight_mode)
    x, description = draw(_inputs_and_description(model, max_batch=max_batch, padding=padding,
                                                  fully_masked_row=fully_masked_row))
    y = draw(targets(model, x))
    return Case(config, model, x, y, description, seed, weight_mode)


# =========================================================================== helpers
def gate_block(column, units):
    """Gate block of a column of an LSTM kernel, recurrent kernel or bias.

    >>> gate_block(5, units=2)
    ('c', 1)

    Returns
    -------
    (gate, unit) : (str, int)
        ``gate`` in ``GATES`` (Keras order i, f, c, o), ``unit`` in [0, H).
    """
    return GATES[column // units], column % units


def _describe_entry(model, name, index):
    """Human words for one entry of a parameter (or ``input:<name>``) array."""
    if index is None:
        return ""
    index = tuple(int(i) for i in index)
    where = f"[{', '.join(map(str, index))}]"
    if name.startswith("input:"):
        if len(index) == 3:
            return f"{where}: sample {index[0]}, time step {index[1]}, feature {index[2]}"
        return f"{where}: sample {index[0]}, unit {index[-1]}"
    layer_name, _, weight = name.partition("/")
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        return where
    if isinstance(layer, LSTM):
        gate, unit = gate_block(index[-1], layer.units)
        H = layer.units
        k = GATES.index(gate)
        row = {"kernel": f", input feature {index[0]}",
               "recurrent_kernel": f", from h unit {index[0]}"}.get(weight, "")
        return (f"{where}: gate block {gate} (columns {k * H}:{(k + 1) * H} of {4 * H}), "
                f"unit {unit}{row}")
    if isinstance(layer, Dense):
        return f"{where}: output unit {index[-1]}"
    return where


def _relu_inputs(model, tape):
    """The arrays every relu of the forward pass in ``tape`` was applied to (flattened).

    LSTM relus count only at valid steps (a masked step's new state is discarded).
    """
    found = []
    for node, cache in zip(model.nodes, tape.caches):
        layer = node.layer
        if isinstance(layer, Dense) and layer.activation == "relu":
            found.append(cache["logits"].ravel())
        elif isinstance(layer, Activation) and layer.activation == "relu":
            found.append(cache["x"].ravel())
        elif isinstance(layer, LSTM) and "relu" in (layer.activation,
                                                     layer.recurrent_activation):
            H = layer.units
            T = cache["x_tm"].shape[0]
            # z_t = x_t W + h_{t-1} U + b, recomputed (the cache keeps activated gates)
            z = (cache["x_tm"] @ cache["kernel"]
                 + cache["h_states"][:T] @ cache["recurrent_kernel"])
            if cache["use_bias"]:
                z = z + layer.params["bias"]
            gates = cache["gates"]
            # c'_t = f c_{t-1} + i g
            c_new = (gates[..., H:2 * H] * cache["c_states"][:T]
                     + gates[..., :H] * gates[..., 2 * H:3 * H])
            valid = (np.ones(z.shape[:2] + (1,), dtype=bool) if cache["step_mask"] is None
                     else cache["step_mask"])
            if layer.activation == "relu":
                found += [z[..., 2 * H:3 * H][np.broadcast_to(valid, c_new.shape)],
                          c_new[np.broadcast_to(valid, c_new.shape)]]
            if layer.recurrent_activation == "relu":
                gate_z = np.concatenate([z[..., :2 * H], z[..., 3 * H:]], axis=-1)
                found.append(gate_z[np.broadcast_to(valid, gate_z.shape)])
    return found


def kink_distance(model, x):
    """Smallest distance of any relu input to 0 (its kink) in a forward pass on ``x``.

    Covers Dense/Activation relu, LSTM relu activations (candidate and cell
    pre-activations, at valid steps) and relu recurrent activations (gate
    pre-activations). ``inf`` when the model has no relu.
    """
    tape = model.forward(model._inputs(x), training=True)
    return min((float(np.min(np.abs(a), initial=np.inf)) for a in _relu_inputs(model, tape)),
               default=np.inf)


def _relu_flip(model, xs, h):
    """First ``(name, index)`` whose ±2h perturbation flips a relu (mask-changing skipped)."""
    def pattern():
        tape = model.forward(xs, training=True)
        signs = [a > 0 for a in _relu_inputs(model, tape)]
        masks = [m for m in tape.masks.values() if m is not None]
        return signs, masks

    base_signs, base_masks = pattern()
    if not base_signs:
        return None
    arrays = list(model.params.items()) + [(f"input:{n}", a)
                                           for n, a in zip(model.input_names, xs)]
    for name, array in arrays:
        flat = array.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            flipped = False
            for delta in (2 * h, -2 * h):
                flat[j] = original + delta
                signs, masks = pattern()
                if not all(np.array_equal(a, b) for a, b in zip(masks, base_masks)):
                    break                      # gradcheck skips this input entry anyway
                if not all(np.array_equal(a, b) for a, b in zip(signs, base_signs)):
                    flipped = True
                    break
            flat[j] = original
            if flipped:
                return name, np.unravel_index(j, array.shape)
    return None


#: Float64 rounding of a loss of size L leaves about 1e-12·L in a five-point derivative with
#: h = 1e-4 (measured on drawn models); a gradient array whose largest entry is below this
#: floor divided by the relative tolerance cannot be checked by finite differences.
FINITE_DIFFERENCE_NOISE = 1e-12


def gradcheck_caveats(model, x, y, h=1e-4, rtol=1e-6, report=None):
    """Reasons why finite differences cannot judge ``model``'s gradients on ``(x, y)``.

    An empty list means a gradient check is meaningful. Otherwise each entry says why not:

    - the loss or a gradient overflows float64 (unbounded activations through time);

    - perturbing some parameter or input entry by ±2h (the stencil's reach) flips the sign
      of a relu input: the stencil straddles the kink and measures an average slope;
    - a parameter or input whose gradient is not zero but whose largest entry is below
      ``10 · FINITE_DIFFERENCE_NOISE · max(1, |L|) / rtol``: the float64 rounding of the
      loss (amplified by 1/h) is then larger than the ``rtol`` the check asks for;
    - the loss is too curved for the stencil: the check at ``h`` fails, but the error of
      every failing array falls at least 8-fold when h is halved (the five-point stencil's
      truncation error goes as h⁴, 16-fold; a wrong gradient's error would not fall), so
      finite differences at ``h`` cannot judge it (unbounded gates through time do this).

    ``report``: the :func:`mlstm.gradcheck` report at this ``h`` when the caller has one
    (the curvature check then does not run it again).

    :func:`assert_gradients_close` adds these to its failure message and to the
    :class:`GradientMismatch` it raises; property tests reject such draws with
    ``hypothesis.assume``.
    """
    caveats = []
    problem = Float64Problem(model, x, y)
    m64, xs, loss = problem.model, problem.xs, problem.loss
    with np.errstate(over="ignore", invalid="ignore"):    # overflow is reported below
        _, result, grads, d_inputs = problem.analytic()
    if not (np.isfinite(result.total) and all(np.all(np.isfinite(g)) for g in
                                              list(grads.values()) + list(d_inputs))):
        # Activations without bounds (linear or relu gates) can grow doubly exponentially
        # through time and overflow float64: no derivative to compare then.
        return [f"the loss ({result.total:.3g}) or a gradient is not finite in float64"]
    floor = 10 * FINITE_DIFFERENCE_NOISE * max(1.0, abs(result.total)) / rtol * (1e-4 / h)
    mask_values = {name: mask_value for name, _, mask_value, _ in _input_specs(m64)}
    arrays = [(name, m64.params[name], g) for name, g in grads.items()]
    arrays += [(f"input:{n}", a, g) for n, a, g in zip(m64.input_names, xs, d_inputs)]
    rng = np.random.default_rng(0)

    for name, array, g in arrays:
        scale = float(np.max(np.abs(g), initial=0.0))
        if scale >= floor:
            continue
        # The analytic gradient is below the floor. Ask the loss itself, along a random
        # direction v (|v| <= 1; zero on padded steps, whose mask a perturbation would flip):
        # if neither moves, the array does not influence the loss (exact zeros on both
        # sides: checkable); if the loss's slope is as small as the analytic one (a tiny
        # gradient the loss cannot resolve, or a stationary point where only rounding noise
        # is left), the array cannot be judged; if the slope is larger, the check goes
        # ahead and will fail, as it should.
        v = rng.standard_normal(array.shape)
        mask_value = mask_values.get(name.partition("input:")[2]) if name.startswith(
            "input:") else None
        if mask_value is not None and array.ndim == 3:
            v[np.all(array == mask_value, axis=-1)] = 0
        v /= max(float(np.max(np.abs(v), initial=0.0)), 1e-300)
        original = array.copy()
        base = loss()
        np.copyto(array, original + h * v)
        plus = loss()
        np.copyto(array, original - h * v)
        minus = loss()
        np.copyto(array, original)
        probe = abs(plus - minus) / (2 * h)
        moves = plus != base or minus != base
        if (scale > 0 or moves) and probe < floor * max(array.size, 1):
            caveats.append(f"the gradient of {name} is at most {scale:.2g} (a finite "
                           f"difference along a random direction: {probe:.2g}), below the "
                           f"finite-difference noise floor {floor:.2g} for rtol {rtol:g}")
    if not caveats:
        flip = _relu_flip(m64, xs, h)
        if flip is not None:
            caveats.append(f"perturbing {flip[0]}{list(map(int, flip[1]))} by ±{2 * h:g} "
                           f"flips a relu (its input is {kink_distance(m64, xs):.2g} from the "
                           "kink)")
    if not caveats:
        caveats += _truncation_caveats(model, x, y, h, rtol, report)
    return caveats


def _truncation_caveats(model, x, y, h, rtol, report=None):
    """The arrays a check at ``h`` fails only because the stencil is too coarse (see
    :func:`gradcheck_caveats`): their error falls ≥ 8-fold when h is halved."""
    coarse = (report if report is not None and report.h == h and report.method == "entries"
              else gradcheck(model, x, y, h=h)).rows
    failing = [name for name, row in coarse.items() if row["max_rel_error"] >= rtol]
    if not failing:
        return []
    fine = gradcheck(model, x, y, h=h / 2).rows
    ratios = {name: coarse[name]["max_abs_error"] / max(fine[name]["max_abs_error"], 1e-300)
              for name in failing}
    if min(ratios.values()) < 8:
        return []                       # some error does not shrink: let the check fail
    return [f"the loss is too curved for h={h:g}: {name}'s error {coarse[name]['max_abs_error']:.2g}"
            f" falls {ratio:.0f}-fold at h={h / 2:g} (stencil truncation, not the gradient)"
            for name, ratio in ratios.items()]


# =========================================================================== assertions
def assert_gradients_close(model, x, y, rtol=1e-6, **gradcheck_kwargs):
    """Assert that ``model``'s gradients match finite differences (float64, five-point).

    Runs :func:`mlstm.gradcheck` (a float32 model is cloned to float64) on every parameter
    and input, and fails when any max relative error reaches ``rtol``, with a message that
    names each failing parameter or input, its error and its worst entry: the gate block and
    unit for LSTM weights, the time step for sequence inputs.

    Parameters
    ----------
    model : Model
        Compiled.
    x, y : inputs and targets, as for ``fit``.
    rtol : float
    **gradcheck_kwargs
        Passed to :func:`mlstm.gradcheck` (``h``, ``inputs``, ``method``, ``max_entries``).

    Returns
    -------
    GradcheckReport
        When the check passes.

    Raises
    ------
    GradientMismatch
        An AssertionError whose ``caveats`` say why finite differences cannot judge this
        case (:func:`gradcheck_caveats`), empty when they can: then the gradients are wrong.
    """
    report = gradcheck(model, x, y, **gradcheck_kwargs)
    bad = [(name, row) for name, row in report.rows.items()
           if not row["max_rel_error"] < rtol]           # NaN fails too
    if not bad:
        return report
    lines = [f"gradients of model {model.name!r} do not match finite differences "
             f"(max relative error must be below {rtol:g}; {report.method}, five-point, "
             f"h={report.h:g}, float64):"]
    for name, row in bad:
        entry = _describe_entry(model, name, row.get("worst_index"))
        lines.append(f"  {name}: max rel error {row['max_rel_error']:.3g} "
                     f"(max abs error {row['max_abs_error']:.3g})"
                     + (f", worst entry {entry}" if entry else ""))
    caveats = gradcheck_caveats(model, x, y, h=report.h, rtol=rtol, report=report)
    for caveat in caveats:
        lines.append(f"  note: {caveat}; finite differences cannot judge this case")
    lines += ["", str(report)]
    raise GradientMismatch("\n".join(lines), caveats)


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_gradients_close`; ``caveats`` (list of str) are the reasons
    finite differences cannot judge the case, empty when the gradients are simply wrong."""

    def __init__(self, message, caveats):
        super().__init__(message)
        self.caveats = list(caveats)


def _output_list(result, model, label):
    names = model.output_names
    if isinstance(result, dict):
        missing = [n for n in names if n not in result]
        if missing:
            raise AssertionError(f"{label} returned a dict without outputs {missing} "
                                 f"(outputs are {names})")
        result = [result[n] for n in names]
    elif not isinstance(result, (list, tuple)):
        result = [result]
    result = list(result)
    if len(result) != len(names):
        raise AssertionError(f"{label} returned {len(result)} outputs, mlstm has "
                             f"{len(names)}: {names}")
    return [np.asarray(r, dtype=np.float64) for r in result]


def _output_entry(index):
    index = [int(i) for i in index]
    if len(index) == 3:
        return f"[{index[0]}, {index[1]}, {index[2]}]: sample {index[0]}, time step " \
               f"{index[1]}, unit {index[2]}"
    return f"{index}: sample {index[0]}" + (f", unit {index[-1]}" if len(index) > 1 else "")


def _first_mismatch(ours, theirs, rtol, atol, describe=_output_entry):
    """``None`` when close, else where they differ: the worst entry and the time steps."""
    if ours.shape != theirs.shape:
        return f"has shape {theirs.shape}, mlstm's has {ours.shape}"
    bad = ~np.isclose(theirs, ours, rtol=rtol, atol=atol)
    if not bad.any():
        return None
    error = np.where(bad, np.abs(theirs - ours), 0)
    error[np.isnan(theirs)] = np.inf
    worst = np.unravel_index(int(np.argmax(error)), ours.shape)
    text = (f"max abs error {float(np.max(error)):.3g} at {describe(worst)} (mlstm "
            f"{ours[worst]:.6g}, other {theirs[worst]:.6g})")
    if ours.ndim == 3:
        steps = np.flatnonzero(bad.any(axis=(0, 2))).tolist()
        text = f"differs from time step {steps[0]} on (time steps {steps}); {text}"
    return text


def _permuted_params(model, params, order):
    """Params with every LSTM's gate blocks rearranged so that block k holds gate order[k]."""
    out = dict(params)
    for layer in model.layers:
        if not isinstance(layer, LSTM):
            continue
        H = layer.units
        columns = np.concatenate([np.arange(GATES.index(g) * H, (GATES.index(g) + 1) * H)
                                  for g in order])
        for weight in ("kernel", "recurrent_kernel", "bias"):
            key = f"{layer.name}/{weight}"
            if key in out:
                out[key] = np.ascontiguousarray(params[key][..., columns])
    return out


def _gate_order_hint(model, other_forward, params, xs, ours, rtol, atol):
    if not any(isinstance(layer, LSTM) for layer in model.layers):
        return None
    for order in itertools.permutations(GATES):
        if order == GATES:
            continue
        try:
            theirs = _output_list(other_forward(_permuted_params(model, params, order),
                                                [a.copy() for a in xs]), model, "other_forward")
        except Exception:  # the hint is best effort; the mismatch itself is reported anyway
            continue
        if all(_first_mismatch(o, t, rtol, atol) is None for o, t in zip(ours, theirs)):
            swapped = [g for g, h in zip(GATES, order) if g != h]
            return (f"gate order: the other implementation matches mlstm when the gate "
                    f"blocks are handed to it in the order {', '.join(order)} (Keras' order "
                    f"is {', '.join(GATES)}): it reads gate blocks {', '.join(swapped)} of the "
                    f"kernel, recurrent kernel and bias in each other's places")
    return ("gate order: no rearrangement of the gate blocks i, f, c, o makes it match, so "
            "the difference is not (only) a gate-order slip")


def _check_case(model, other_forward, other_backward, xs, weight_seed, rtol, atol,
                description, weight_scale):
    randomize_weights(model, weight_seed, weight_scale)
    params = {k: v.copy() for k, v in model.params.items()}
    header = (f"other implementation does not match mlstm (weights: randomize_weights(seed="
              f"{weight_seed}, scale={weight_scale}); data: {description})")
    tape = model.forward(xs)
    ours = tape.outputs
    theirs = _output_list(other_forward({k: v.copy() for k, v in params.items()},
                                        [a.copy() for a in xs]), model, "other_forward")
    problems = []
    for name, o, t in zip(model.output_names, ours, theirs):
        where = _first_mismatch(o, t, rtol, atol)
        if where is not None:
            problems.append(f"  forward: output {name!r} {where}")
    if problems:
        hint = _gate_order_hint(model, other_forward, params, xs, ours, rtol, atol)
        raise AssertionError("\n".join([header] + problems + ([f"  {hint}"] if hint else [])))
    if other_backward is None:
        return
    rng = np.random.default_rng([weight_seed, 1])
    seeds = [rng.standard_normal(o.shape) for o in ours]
    grads, d_inputs = model.backward(tape, dict(enumerate(seeds)), input_grads=True)
    theirs = other_backward({k: v.copy() for k, v in params.items()}, [a.copy() for a in xs],
                            [s.copy() for s in seeds])
    if not isinstance(theirs, dict):
        raise AssertionError("other_backward must return a dict {'layer/weight': gradient, "
                             "optionally 'input:<name>': gradient}, got "
                             f"{type(theirs).__name__}")
    missing = [name for name in grads if name not in theirs]
    if missing:
        raise AssertionError(f"{header}\n  backward: no gradient returned for {missing}")
    expected = dict(grads)
    for name, g in zip(model.input_names, d_inputs):
        key = f"input:{name}" if f"input:{name}" in theirs else name
        if key in theirs:
            expected[f"input:{name}"] = g
            theirs = dict(theirs, **{f"input:{name}": theirs[key]})
    for name, g in expected.items():
        t = np.asarray(theirs[name], dtype=np.float64)
        where = _first_mismatch(g, t, rtol, atol,
                                describe=lambda index, name=name: _describe_entry(model, name,
                                                                                  index))
        if where is None:
            continue
        layer = model.get_layer(name.partition("/")[0]) if "/" in name else None
        if isinstance(layer, LSTM) and g.shape == t.shape:
            bad_columns = (~np.isclose(t, g, rtol=rtol, atol=atol)).reshape(-1, g.shape[-1])
            blocks = {gate_block(int(j), layer.units)[0]
                      for j in np.flatnonzero(bad_columns.any(axis=0))}
            blocks = ", ".join(sorted(blocks, key=GATES.index))
            where += f"; gate blocks with wrong entries: {blocks}"
        problems.append(f"  backward: {name} {where}")
    if problems:
        raise AssertionError("\n".join([header] + problems))


def assert_matches(model, other_forward, other_backward=None, *, x=None, max_examples=20,
                   rtol=1e-6, atol=1e-8, seed=None, weight_scale=0.6, max_batch=3,
                   max_timesteps=4, weight_seed=0):
    """Check another implementation against mlstm on drawn weights and inputs.

    For each case, every parameter of a float64 copy of ``model`` is drawn
    (:func:`randomize_weights`: distinct values in every gate block) and inputs are drawn
    with :func:`sequences`; then the other implementation must reproduce mlstm's outputs
    and, when ``other_backward`` is given, its gradients for random output gradients.
    hypothesis searches up to ``max_examples`` cases and shrinks a failure to the smallest
    one (set ``timesteps=None`` in a config to let it shrink T as well).

    Parameters
    ----------
    model : Model, or an :func:`lstm_configs` / :func:`model_configs` dict
        The mlstm model the other implementation claims to compute. An LSTM config gives
        parameters ``lstm/kernel`` (D, 4H), ``lstm/recurrent_kernel`` (H, 4H),
        ``lstm/bias`` (4H,) and inputs ``x`` (and ``h0``, ``c0``); see :func:`lstm_model`.
    other_forward : callable ``(params, inputs) -> outputs``
        ``params``: ``{"layer/weight": ndarray}`` in Keras layout (gate blocks i, f, c, o);
        ``inputs``: list of arrays in model input order (padded steps hold the Masking
        layer's ``mask_value``). Returns one array, a list in output order, or a dict by
        output name.
    other_backward : callable ``(params, inputs, d_outputs) -> grads``, optional
        ``d_outputs``: list of dL/d(output). Returns ``{"layer/weight": dL/dθ}`` for every
        parameter, optionally ``"input:<name>"`` (or ``"<name>"``) entries for inputs.
    x : list of arrays, optional
        Check this one input instead of drawing. Inside your own ``@given`` test, pass it
        (draw it with :func:`sequences`): hypothesis refuses a search nested in another
        (its ``nested_given`` health check).
    max_examples : int
    rtol, atol : float
        Tolerances of the comparison (``numpy.isclose``).
    seed : int, optional
        Seed of the hypothesis search; by default the search is derandomized (the same
        cases every run).
    weight_scale : float
    max_batch, max_timesteps : int
        Bounds for drawn inputs (``max_timesteps`` for inputs with T = None).
    weight_seed : int
        Weight seed used with ``x``.

    Raises
    ------
    AssertionError
        Naming the output (first differing time step, sample, unit) or the parameter (gate
        block and unit; input gradients: the time steps), and, for a forward mismatch, the
        gate order under which the other implementation would match, if there is one.
    """
    reference = _as_model(model).clone(dtype="float64")
    if x is not None:
        xs = [np.asarray(a, dtype=np.float64) for a in reference._inputs(x)]
        _check_case(reference, other_forward, other_backward, xs, weight_seed, rtol, atol,
                    f"given inputs of shapes {[a.shape for a in xs]}", weight_scale)
        return

    @settings(max_examples=max_examples, deadline=None, database=None,
              derandomize=seed is None, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(weights=st.integers(0, 2 ** 32 - 1),
           data=_inputs_and_description(reference, max_batch=max_batch,
                                        max_timesteps=max_timesteps))
    def check_against_mlstm(weights, data):
        xs, description = data
        _check_case(reference, other_forward, other_backward, xs, weights, rtol, atol,
                    description, weight_scale)

    if seed is not None:
        check_against_mlstm = hypothesis_seed(seed)(check_against_mlstm)
    check_against_mlstm()
