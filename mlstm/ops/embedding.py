"""Embedding lookup: rows of a (V, D) table picked by integer ids, and its gradient.

Forward::

    y[n, t] = E[ids[n, t]]             ids: (N, ...) ints in [0, V), E: (V, D), y: (N, ..., D)

Backward. Each id that occurs sends its output's gradient back to its row, so the gradient
of the table is a scatter-add (rows that several positions share add up; rows no position
picks get 0)::

    dE[v] = Σ_{(n, t): ids[n, t] = v} dy[n, t]

Two ways to compute it, with the same result:

* :func:`scatter_add_reference`: ``np.add.at(dE, ids, dy)``, the definition written out;
* :func:`scatter_add`: the same sum as one sparse matrix product ``dE = Sᵀ dy`` where S
  (M × V, M = number of positions) has a single 1 per row, at column ``ids[m]``. SciPy
  builds S in compressed form (its rows sorted by id) and multiplies it in one pass over
  dy, adding each row's entries in position order, as ``np.add.at`` does: the two agree
  bit for bit. Measured at N=64, T=100, V=10 000, D=64 (docs/classification.md): ~0.5-0.7
  ms against ~8-12 ms for ``np.add.at``.

ids are not differentiable: there is no gradient with respect to them.

The per-occurrence gradient. Keras (TensorFlow backend) hands its optimizers the table's
gradient as ``tf.IndexedSlices``: one row ``dy[n, t]`` per token *occurrence*, duplicates
not summed, and its optimizers square (Adam, RMSprop, Adagrad, Nadam) or take the absolute
value (Adamax) of each occurrence before the rows are summed. :class:`SparseRowsGradient`
carries those rows next to the dense sum ``dE`` (the gradient everything else sees), so that
:mod:`mlstm.optimizers` can do the same (docs/optimizers.md, "Embedding tables").
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray
from scipy import sparse

from .._typing import ArrayLike, Cache, FloatArray, IntArray

__all__ = ["embedding_forward", "embedding_backward", "embedding_backward_rows",
           "scatter_add", "scatter_add_reference", "first_id_outside", "SparseRowsGradient"]


def embedding_forward(ids: IntArray, embeddings: FloatArray) -> tuple[FloatArray, Cache]:
    """Look up rows of ``embeddings`` (V, D) for integer ``ids`` (N, ...): ``(y, cache)``.

    The ids must lie in [0, V) (the layer checks them first: NumPy would wrap negative ids
    around silently).

    Returns
    -------
    y : ndarray (N, ..., D), the dtype of ``embeddings``
    cache : dict
    """
    y = np.take(embeddings, ids, axis=0)
    return y, {"ids": ids, "vocabulary": embeddings.shape[0]}


def embedding_backward(d_y: FloatArray, cache: Cache) -> FloatArray:
    """Gradient of the table, (V, D), from ``d_y`` (N, ..., D): :func:`scatter_add`."""
    return scatter_add(cache["ids"], d_y, cache["vocabulary"])


def embedding_backward_rows(d_y: NDArray[np.floating], cache: dict[str, Any]
                            ) -> SparseRowsGradient:
    """The table's gradient per token occurrence: a :class:`SparseRowsGradient` whose
    :meth:`~SparseRowsGradient.dense` is :func:`embedding_backward` (same bits)."""
    ids = np.asarray(cache["ids"]).reshape(-1)
    return SparseRowsGradient(ids, d_y.reshape(ids.size, -1), cache["vocabulary"])


def _picks(ids: NDArray[np.integer], vocabulary: int, dtype: DTypeLike) -> sparse.csr_matrix:
    """The (V × M) 0/1 matrix with a 1 at (ids[m], m): ``picks @ rows`` is the scatter-add."""
    return sparse.csr_matrix((np.ones(ids.size, dtype=dtype), (ids, np.arange(ids.size))),
                             shape=(vocabulary, ids.size))


def scatter_add(ids: ArrayLike, values: FloatArray, vocabulary: int) -> FloatArray:
    """``out[v] = Σ_{m: ids[m] = v} values[m]``, (V, D), as one sparse product.

    Parameters
    ----------
    ids : ndarray of int (N, ...)
        In [0, vocabulary).
    values : ndarray (N, ..., D)
    vocabulary : int
        V, the number of rows of the result.
    """
    flat_ids = np.asarray(ids).reshape(-1)
    rows = values.reshape(flat_ids.size, -1)
    return np.asarray(_picks(flat_ids, vocabulary, rows.dtype) @ rows)


def scatter_add_reference(ids: ArrayLike, values: FloatArray, vocabulary: int) -> FloatArray:
    """The plain definition of :func:`scatter_add`: ``np.add.at`` on a zero table."""
    rows = values.reshape(np.asarray(ids).size, -1)
    out = np.zeros((vocabulary, rows.shape[1]), dtype=values.dtype)
    np.add.at(out, np.asarray(ids).reshape(-1), rows)
    return out


def first_id_outside(ids: IntArray, vocabulary: int) -> tuple[int, ...] | None:
    """Index tuple of the first id outside [0, vocabulary), or None when all are inside."""
    if ids.size == 0 or (ids.min() >= 0 and ids.max() < vocabulary):
        return None
    outside = (ids < 0) | (ids >= vocabulary)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(outside)), ids.shape))


class SparseRowsGradient:
    """A (V, D) table's gradient as one row per token occurrence (``tf.IndexedSlices``).

    ``rows[m]`` is the gradient reaching the lookup of ``ids[m]``; an id that occurs k times
    has k rows. The table's gradient is their per-id sum, :meth:`dense`; what Keras'
    optimizers compute from the occurrences themselves is :meth:`squares` (Σ g_m² per id)
    and :meth:`magnitudes` (Σ |g_m| per id). Immutable: the transforms return new objects.

    Parameters
    ----------
    ids : ndarray of int (M,)
        In [0, vocabulary).
    rows : ndarray (M, D)
    vocabulary : int
        V.
    dense : ndarray (V, D), optional
        The per-id sum of ``rows`` if it is already known (the model's gradient of the
        table), so that it is used bit for bit; else :func:`scatter_add` computes it.

    Notes
    -----
    The three sums go through one (V × M) pick matrix, built once (:func:`scatter_add`);
    :meth:`reference` gives the same three with ``np.add.at`` (tested to agree bit for bit).
    """

    def __init__(self, ids: ArrayLike, rows: ArrayLike, vocabulary: int,
                 dense: NDArray[np.floating] | None = None) -> None:
        ids, rows = np.asarray(ids), np.asarray(rows)
        if ids.ndim != 1 or rows.ndim != 2 or rows.shape[0] != ids.size:
            raise ValueError(f"SparseRowsGradient takes ids (M,) and rows (M, D), got ids "
                             f"{ids.shape} and rows {rows.shape}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"SparseRowsGradient: ids must be integers, got {ids.dtype}")
        if dense is not None and dense.shape != (vocabulary, rows.shape[1]):
            raise ValueError(f"SparseRowsGradient: dense has shape {dense.shape}, the table "
                             f"{(vocabulary, rows.shape[1])}")
        self.ids, self.rows, self.vocabulary = ids, rows, int(vocabulary)
        self._dense = dense
        self._pick_matrix: sparse.csr_matrix | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(V, D), the table's shape."""
        return (self.vocabulary, self.rows.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """The rows' dtype (the table's)."""
        return self.rows.dtype

    def _scatter(self, values: NDArray[np.floating]) -> NDArray[np.floating]:
        if self._pick_matrix is None:
            self._pick_matrix = _picks(self.ids, self.vocabulary, values.dtype)
        return np.asarray(self._pick_matrix @ values)

    def dense(self) -> NDArray[np.floating]:
        """Σ_{m: ids[m] = v} rows[m] for every id v: the table's gradient, (V, D)."""
        if self._dense is None:
            self._dense = self._scatter(self.rows)
        return self._dense

    def squares(self) -> NDArray[np.floating]:
        """Σ_{m: ids[m] = v} rows[m]² (elementwise), (V, D): what Keras' optimizers add to
        their second moments. Equals ``dense()**2`` where no id repeats."""
        return self._scatter(np.square(self.rows))

    def magnitudes(self) -> NDArray[np.floating]:
        """Σ_{m: ids[m] = v} |rows[m]|, (V, D): Adamax's ``|g|``. Equals ``|dense()|`` where
        no id repeats."""
        return self._scatter(np.abs(self.rows))

    def _same_ids(self, rows: NDArray[np.floating],
                  dense: NDArray[np.floating] | None = None) -> SparseRowsGradient:
        """A new object on the same ids (the pick matrix, when of rows' dtype, reused)."""
        out = SparseRowsGradient(self.ids, rows, self.vocabulary, dense=dense)
        if self._pick_matrix is not None and self._pick_matrix.dtype == out.rows.dtype:
            out._pick_matrix = self._pick_matrix
        return out

    def with_rows(self, rows: NDArray[np.floating]) -> SparseRowsGradient:
        """The same ids with new rows (a clipped or scaled copy); the sum is recomputed."""
        return self._same_ids(rows)

    def with_dense(self, dense: NDArray[np.floating]) -> SparseRowsGradient:
        """The same occurrences, with ``dense`` given as their sum (used bit for bit)."""
        return self._same_ids(self.rows, dense)

    def astype(self, dtype: DTypeLike, copy: bool = True) -> SparseRowsGradient:
        """Rows (and the sum, when known) in ``dtype``; ``self`` when already in it."""
        if self.rows.dtype == dtype:
            return self
        dense = None if self._dense is None else self._dense.astype(dtype)
        return self._same_ids(self.rows.astype(dtype), dense)

    def __add__(self, other: object) -> SparseRowsGradient:
        """Two lookups of the same table (a shared Embedding): their occurrences together,
        as TensorFlow aggregates IndexedSlices (concatenated)."""
        if not isinstance(other, SparseRowsGradient) or other.shape != self.shape:
            return NotImplemented
        return SparseRowsGradient(np.concatenate([self.ids, other.ids]),
                                  np.concatenate([self.rows, other.rows]), self.vocabulary)

    def reference(self) -> tuple[NDArray[np.floating], ...]:
        """``(dense, squares, magnitudes)`` by ``np.add.at``, the plain definitions."""
        return tuple(scatter_add_reference(self.ids, values, self.vocabulary)
                     for values in (self.rows, np.square(self.rows), np.abs(self.rows)))

    def __repr__(self) -> str:
        return (f"SparseRowsGradient({self.ids.size} occurrences of "
                f"{np.unique(self.ids).size} ids, table {self.shape}, {self.dtype})")
