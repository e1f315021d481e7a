"""Ready connectivity: folders of N x N FC matrices, or of their upper-triangle vectors.

Files: ``.npy``, ``.csv``/``.tsv``/``.txt``/``.1D`` (a header row of ROI names and a first column
of labels are skipped), ``.mat`` (the array under ``mat_key``, or the only numeric one).

- **Matrices** must be square, symmetric (within ``1e-4``) and finite off the diagonal; the
  stored matrix is symmetrised exactly.
- **Vectors** (a 1-D array, or a single row / column) hold the upper triangle, row-major
  (``numpy.triu_indices``, the order of ``scipy.spatial.distance.squareform``):
  ``vector_diagonal=False`` (default) *without* the diagonal, length ``N(N-1)/2``;
  ``vector_diagonal=True`` *with* it, length ``N(N+1)/2``. (nilearn's ``sym_matrix_to_vec``
  uses another layout: the lower triangle with a scaled diagonal; rebuild such vectors with
  ``nilearn.connectome.vec_to_sym_matrix`` first.)
- **The diagonal** of every stored matrix is set by ``values``: 1 for ``"correlation"`` (Pearson
  r, off-diagonal values checked to lie in [-1, 1]) or 0 for ``"fisher_z"`` (``arctanh(r)``, as
  :func:`~lcm_hf.connectivity_lcm.fisher_z` writes it), whatever the file holds there (files often
  store 0, NaN or inf). Use the model's processor with ``fisher_z`` matching ``values``.

Every error names the file.

Example
-------
>>> ds = import_connectivity_folder("fc_matrices/", "participants.tsv",          # doctest: +SKIP
...                                 subject_column="participant_id")
>>> vector_to_matrix([0.5, 0.25, 0.125]).tolist()      # N = 3, upper triangle without the diagonal
[[1.0, 0.5, 0.25], [0.5, 1.0, 0.125], [0.25, 0.125, 1.0]]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from .folders import import_files, list_files
from .matching import check_unmatched
from .readers import TIMESERIES_SUFFIXES, read_array_file

CONNECTIVITY_SUFFIXES = TIMESERIES_SUFFIXES
CONNECTIVITY_VALUES = {"correlation": 1.0, "fisher_z": 0.0}
"""Kinds of stored values and the diagonal each gets."""
SYMMETRY_TOLERANCE = 1e-4


def _check_values(values: str) -> float:
    if values not in CONNECTIVITY_VALUES:
        raise LcmInputError(f"expected values 'correlation' or 'fisher_z', got {values!r}")
    return CONNECTIVITY_VALUES[values]


def vector_size(num_rois: int, diagonal: bool = False) -> int:
    """Length of the upper-triangle vector of an N x N matrix: ``N(N+1)/2`` with the diagonal, ``N(N-1)/2`` without."""
    return num_rois * (num_rois + 1) // 2 if diagonal else num_rois * (num_rois - 1) // 2


def nearest_vector_sizes(length: int, diagonal: bool = False) -> list[tuple[int, int]]:
    """The valid vector lengths just below and above ``length``, as ``[(length, N), ...]`` (N >= 2).

    >>> nearest_vector_sizes(20)
    [(15, 6), (21, 7)]
    """
    n = max(2, (math.isqrt(8 * max(length, 0) + 1) + (-1 if diagonal else 1)) // 2)
    while n > 2 and vector_size(n, diagonal) > length:
        n -= 1
    below = [(vector_size(n, diagonal), n)] if vector_size(n, diagonal) < length else []
    above = n + 1 if vector_size(n, diagonal) <= length else n
    return below + [(vector_size(above, diagonal), above)]


def rois_of_vector(length: int, diagonal: bool = False) -> int | None:
    """N of an upper-triangle vector of ``length`` (``N(N-1)/2``, or ``N(N+1)/2`` with the diagonal), or None."""
    return _rois_of_vector(length, diagonal)


def _rois_of_vector(length: int, diagonal: bool) -> int | None:
    n = (math.isqrt(8 * length + 1) + (-1 if diagonal else 1)) // 2
    return n if n >= 2 and vector_size(n, diagonal) == length else None


def vector_to_matrix(vector, *, diagonal: bool = False, fill: float = 1.0, num_rois: int | None = None,
                     source: str = "the vector") -> np.ndarray:
    """Symmetric N x N matrix from its upper triangle (row-major, ``numpy.triu_indices`` order).

    Parameters
    ----------
    vector : array-like, shape (L,)
        ``L = N(N-1)/2`` (``diagonal=False``) or ``N(N+1)/2`` (``diagonal=True``).
    diagonal : bool
        The vector includes the diagonal.
    fill : float
        Diagonal of the result when the vector has none (1 for correlation, 0 for Fisher z).
    num_rois : int, optional
        Expected N.
    source : str
        Name used in errors (a file).

    Returns
    -------
    numpy.ndarray, shape (N, N), float32
    """
    vector = np.asarray(vector, dtype=np.float64).ravel()
    n = _rois_of_vector(vector.size, diagonal)
    convention = "N(N+1)/2, with the diagonal" if diagonal else "N(N-1)/2, without the diagonal"
    if n is None:
        other = _rois_of_vector(vector.size, not diagonal)
        hint = (f" (it fits N={other} {'with' if not diagonal else 'without'} the diagonal: pass "
                f"vector_diagonal={not diagonal})" if other else f" (nearest valid lengths: "
                f"{', '.join(f'{size} (N={rois})' for size, rois in nearest_vector_sizes(vector.size, diagonal))})")
        raise LcmInputError(f"expected an upper-triangle vector of length {convention}, got length {vector.size} "
                            f"in {source}{hint}")
    if num_rois is not None and n != num_rois:
        raise LcmInputError(f"expected {num_rois} ROIs (a vector of length {vector_size(num_rois, diagonal)}, "
                            f"{convention}), got length {vector.size} (N={n}) in {source}")
    matrix = np.zeros((n, n), dtype=np.float64)
    rows, cols = np.triu_indices(n, k=0 if diagonal else 1)
    matrix[rows, cols] = vector
    matrix[cols, rows] = vector
    if not diagonal:
        np.fill_diagonal(matrix, fill)
    return matrix.astype(np.float32)


def matrix_to_vector(matrix, *, diagonal: bool = False) -> np.ndarray:
    """Upper triangle of a square matrix, row-major (the inverse of :func:`vector_to_matrix`)."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise LcmInputError(f"expected a square (N, N) matrix, got shape {matrix.shape}")
    return matrix[np.triu_indices(matrix.shape[0], k=0 if diagonal else 1)]


def check_connectivity_matrix(matrix, *, values: str = "correlation", source: str = "the matrix") -> np.ndarray:
    """Check a square FC matrix (square, symmetric, finite off the diagonal, in [-1, 1] for
    correlations) and return it symmetrised, float32, with the diagonal of ``values`` (1 or 0)."""
    fill = _check_values(values)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise LcmInputError(f"expected a square (N, N) connectivity matrix, got shape {matrix.shape} in {source}")
    off = ~np.eye(matrix.shape[0], dtype=bool)
    bad = off & ~np.isfinite(matrix)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise LcmInputError(f"expected finite connectivity values, got {int(bad.sum())} NaN/inf off the diagonal "
                            f"(first at row {row}, column {col}) in {source}")
    np.fill_diagonal(matrix, 0.0)
    asymmetry = float(np.abs(matrix - matrix.T).max()) if matrix.size else 0.0
    if asymmetry > SYMMETRY_TOLERANCE:
        raise LcmInputError(f"expected a symmetric connectivity matrix, got max |A - A.T| = {asymmetry:.3g} in {source}")
    if values == "correlation" and matrix.size and float(np.abs(matrix).max()) > 1 + SYMMETRY_TOLERANCE:
        raise LcmInputError(f"expected correlations in [-1, 1] in {source}, got max |r| = {float(np.abs(matrix).max()):.3g}"
                            " (Fisher z values? pass values='fisher_z' / --fc-values fisher_z)")
    matrix = (matrix + matrix.T) / 2
    np.fill_diagonal(matrix, fill)
    return matrix.astype(np.float32)


def read_connectivity_file(path: str | os.PathLike, *, values: str = "correlation", vector_diagonal: bool = False,
                           mat_key: str | None = None, num_rois: int | None = None) -> np.ndarray:
    """Read one FC matrix (N x N) or upper-triangle vector file as a checked N x N float32 matrix.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.csv``, ``.tsv``, ``.txt``, ``.1D`` or ``.mat``.
    values : {"correlation", "fisher_z"}
        What the file holds; sets the diagonal (1 or 0) and the range check (module docstring).
    vector_diagonal : bool
        Vectors include the diagonal (length ``N(N+1)/2``; default: without, ``N(N-1)/2``).
    mat_key : str, optional
        Variable of a ``.mat`` file.
    num_rois : int, optional
        Expected N.

    Returns
    -------
    numpy.ndarray, shape (N, N), float32

    Raises
    ------
    ValueError
        Naming the file: unreadable, not square (nor a triangle vector), asymmetric, NaN/inf off the
        diagonal, correlations outside [-1, 1], another N than ``num_rois``.
    """
    fill = _check_values(values)
    path = Path(path)
    data = read_array_file(path, mat_key=mat_key, allow_vector=True, suffixes=CONNECTIVITY_SUFFIXES,
                           what="connectivity")
    if data.ndim == 1 or (data.ndim == 2 and 1 in data.shape and data.size > 1):
        matrix = vector_to_matrix(data, diagonal=vector_diagonal, fill=fill, num_rois=num_rois, source=str(path))
        return check_connectivity_matrix(matrix, values=values, source=str(path))
    if data.ndim != 2 or data.shape[0] != data.shape[1]:
        raise LcmInputError(f"expected a square (N, N) connectivity matrix or an upper-triangle vector, got shape "
                            f"{data.shape} in {path}")
    if num_rois is not None and data.shape[0] != num_rois:
        raise LcmInputError(f"expected a {num_rois} x {num_rois} connectivity matrix, got {data.shape} in {path}")
    return check_connectivity_matrix(data, values=values, source=str(path))


def import_connectivity_folder(
    folder: str | os.PathLike,
    phenotypes=None,
    *,
    values: str = "correlation",
    vector_diagonal: bool = False,
    subject_column: str | None = None,
    scan_column: str | None = None,
    id_column: str | None = None,
    dataset_name: str | None = None,
    site_column: str | None = None,
    phenotype_columns: Sequence[str] | None = None,
    pattern: str = "*",
    recursive: bool = True,
    mat_key: str | None = None,
    num_rois: int | None = None,
    subject_pattern: str | None = None,
    unmatched: str = "warn",
    progress: bool = False,
):
    """Import a folder of ready FC matrices (or upper-triangle vectors), one file per scan.

    Files are matched to phenotype rows exactly as in :func:`~lcm_hf.data.import_timeseries_folder`
    (same identity, same ``unmatched`` summary); each is read with :func:`read_connectivity_file`.

    Parameters
    ----------
    folder : path-like
    phenotypes : path-like or pandas.DataFrame, optional
    values : {"correlation", "fisher_z"}
        What the files hold: the stored diagonal is 1 (correlation) or 0 (Fisher z).
    vector_diagonal : bool
        Vector files include the diagonal (``N(N+1)/2``); default without (``N(N-1)/2``).
    subject_column, scan_column, id_column, dataset_name, site_column, phenotype_columns, pattern,
    recursive, mat_key, subject_pattern, unmatched, progress
        As in :func:`~lcm_hf.data.import_timeseries_folder`.
    num_rois : int, optional
        Expected N (default: the first file's).

    Returns
    -------
    datasets.Dataset
        One row per scan: ``subject_id``, ``scan_id``, ``dataset``, ``site``, ``connectivity``
        (Array2D (N, N) float32), ``session``/``task``/``run`` when names carry them, phenotypes.

    Raises
    ------
    ValueError
        Naming the file: not square / not a triangle vector, asymmetric, non-finite, another N.

    Examples
    --------
    >>> ds = import_connectivity_folder("fc/", "phenotypes.csv", subject_column="participant_id",  # doctest: +SKIP
    ...                                 values="fisher_z")
    """
    _check_values(values)
    check_unmatched(unmatched)
    folder = Path(folder)
    files = list_files(folder, pattern, recursive, CONNECTIVITY_SUFFIXES, "connectivity", exclude=[phenotypes])

    def read(path: Path) -> np.ndarray:
        return read_connectivity_file(path, values=values, vector_diagonal=vector_diagonal, mat_key=mat_key,
                                      num_rois=num_rois)

    return import_files(
        folder, files, read, phenotypes, subject_column=subject_column, scan_column=scan_column,
        id_column=id_column, dataset_name=dataset_name, site_column=site_column,
        phenotype_columns=phenotype_columns, num_rois=num_rois, subject_pattern=subject_pattern,
        unmatched=unmatched, progress=progress, desc="reading connectivity", what="connectivity",
        representation="connectivity")


__all__ = ["CONNECTIVITY_SUFFIXES", "CONNECTIVITY_VALUES", "check_connectivity_matrix", "import_connectivity_folder",
           "matrix_to_vector", "nearest_vector_sizes", "read_connectivity_file", "rois_of_vector", "vector_size",
           "vector_to_matrix"]
