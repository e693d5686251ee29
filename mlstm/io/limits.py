"""The limits on what a file may ask of mlstm: every one checked before the work it bounds.

Each is a module constant, read when a file is opened, so a user with a larger model or
data set raises it for the session (``mlstm.io.limits.MAX_MODEL_BYTES = 8 * 2**30``);
the memory limits of files can also be given per call (``load_model(path, max_bytes=...)``,
``read_data_npz(path, max_bytes=...)``). Beyond a limit, the file is refused with a
``ValueError`` that names the limit, the value the file asks for, and how to raise it.

=========================  =========  ==========================================================
limit                      default    what it bounds
=========================  =========  ==========================================================
MAX_CONFIG_BYTES           32 MiB     the ``mlstm.json`` member, from the zip directory and a
                                      bounded read (a 10,000-layer chain takes about 9 MiB)
MAX_CONFIG_ITEMS           2,000,000  JSON values in it (counted from the text before parsing:
                                      a JSON bomb of ``[],[],...`` never becomes objects)
MAX_LAYERS                 20,000     layers in the architecture
MAX_NODES                  20,000     layer calls in the architecture
MAX_DEPTH                  20,000     the longest path from an input to an output
MAX_NODE_INPUTS            1,000      tensors into one layer call, model inputs, model outputs
MAX_MODEL_BYTES            1 GiB      the weights and optimizer state a file's architecture
                                      implies, computed from the config before any is allocated
MAX_DATA_BYTES             1 GiB      the arrays of a data ``.npz`` (:func:`read_data_npz`),
                                      from their ``.npy`` headers before any is read
MAX_INFLATION              100        how much a compressed member larger than
                                      INFLATION_FLOOR may inflate (a zip bomb); mlstm writes its
                                      files uncompressed (1:1)
INFLATION_FLOOR            1 MiB      members inflating to less are not checked for the ratio
MAX_BATCH_BYTES            4 GiB      the memory one batch of ``fit``, ``train_on_batch``,
                                      ``evaluate`` or ``predict`` (and of the command-line
                                      tools) implies: activations, the caches kept for
                                      backward, gradients; estimated from the data's shapes
                                      before the first batch (:mod:`mlstm.io.memory`)
=========================  =========  ==========================================================
"""
from __future__ import annotations

__all__ = ["MAX_CONFIG_BYTES", "MAX_CONFIG_ITEMS", "MAX_LAYERS", "MAX_NODES", "MAX_DEPTH",
           "MAX_NODE_INPUTS", "MAX_MODEL_BYTES", "MAX_DATA_BYTES", "MAX_INFLATION",
           "INFLATION_FLOOR", "MAX_BATCH_BYTES", "format_bytes"]

MAX_CONFIG_BYTES = 32 * 2 ** 20
MAX_CONFIG_ITEMS = 2_000_000
MAX_LAYERS = 20_000
MAX_NODES = 20_000
MAX_DEPTH = 20_000
MAX_NODE_INPUTS = 1_000
MAX_MODEL_BYTES = 2 ** 30
MAX_DATA_BYTES = 2 ** 30
MAX_INFLATION = 100
INFLATION_FLOOR = 2 ** 20
MAX_BATCH_BYTES = 4 * 2 ** 30


def format_bytes(n: int) -> str:
    """``"1.5 GiB"``: a byte count for messages (any int, however large)."""
    n = int(n)
    if n >= 2 ** 1000:                      # beyond float: say its order of magnitude
        return f"about 10^{len(str(n)) - 1} bytes"
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"
