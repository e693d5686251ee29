"""Save and load a model; read the data files of the command-line tools. Nothing unpickled.

One file holds a model, and it is an ordinary ``.npz`` (a zip archive): ::

    mlstm.json        architecture (Model.get_config), compile settings, optimizer config and
                      step count, the name, shape and dtype of every array, training state
    w0.npy, w1.npy    weights (the parameters, in model.get_weights() order)
    n0.npy, ...       layers' non-trainable state (``Layer.state_names``: BatchNormalization's
                      moving statistics), listed under "state"
    s0.npy, ...       optimizer state (Adam m and v, AMSGrad v_hat, SGD velocity)

``np.load(path)`` opens it and ``unzip -p path mlstm.json`` shows the config.

A loaded file is data, never instructions: its JSON is checked against a fixed schema
(:mod:`.schema`; an unknown key anywhere is refused), every array's ``.npy`` header is
checked against the architecture before its data is read (:mod:`.archive`), the
architecture's memory is computed before any weight is allocated (:mod:`.build`), and the
limits on sizes are stated in :mod:`.limits`. Non-finite weights are refused.

A model saved by the checkpoint option of ``fit`` also records where training was
(``model.training_state`` after loading: ``initial_epoch``, ``epochs``, ``batch_size``,
``seed``, ``shuffle`` and nothing else), so ``model.fit(x, y, **model.training_state)``
resumes, and gives weights bit-identical to a run that was never interrupted.

=============  ===============================================================================
:mod:`.save`   :func:`save_model` (atomic write)
:mod:`.load`   :func:`load_model`, :func:`read_config`
:mod:`.data`   :func:`read_data_npz`: inputs and targets of the command-line tools
:mod:`.limits` the limits, raisable module constants
:mod:`.memory` the memory a batch implies, estimated before allocating; refused beyond
               ``limits.MAX_BATCH_BYTES`` by ``fit``, ``evaluate``, ``predict``
=============  ===============================================================================

See ``docs/reliability.md`` for the schema, the limits and what a file can and cannot do.
"""
from __future__ import annotations

from . import limits
from .data import read_data_npz
from .load import load_model, read_config
from .save import save_model
from .schema import FORMAT, FORMAT_VERSION, TRAINING_STATE_KEYS

__all__ = ["save_model", "load_model", "read_config", "read_data_npz", "limits", "FORMAT",
           "FORMAT_VERSION", "TRAINING_STATE_KEYS"]
