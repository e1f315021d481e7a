"""Readers for ROI time-series files, array files and phenotype tables.

Supported files (time series: rows are time points, columns are ROIs):

- ``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``: delimited text (whitespace, tab or comma). Header
  lines are skipped: lines starting with ``#`` (ABIDE ``rois_*.1D`` headers) and a first line
  of non-numeric names. A first column of non-numeric values (ROI or time labels) is dropped.
- ``.npy``: a 2-D array.
- ``.mat``: a MATLAB (v5) file; the array under ``mat_key`` (or the only 2-D numeric array
  when ``mat_key`` is None).

Every read error is a ``ValueError`` naming the file. A time-series file that holds a square,
symmetric matrix with a unit (or zero) diagonal is refused: it is a ready connectivity matrix,
which :func:`~lcm_hf.data.import_connectivity_folder` reads (``build_dataset.py --format connectivity``).

Example
-------
>>> ts = read_timeseries_file("sub-01_task-rest_bold.tsv")          # doctest: +SKIP
>>> ts.shape                                                        # doctest: +SKIP
(200, 116)
>>> parse_bids_name("sub-01_ses-A_task-rest_run-2_bold.tsv")
{'sub': '01', 'ses': 'A', 'task': 'rest', 'run': '2'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..text_tables import TEXT_SUFFIXES, read_text_table

TIMESERIES_SUFFIXES = (".1d", ".tsv", ".csv", ".txt", ".npy", ".mat")
BIDS_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
SCAN_ENTITIES = BIDS_ENTITIES[1:]
"""The entities that name a scan of a subject (``scan_id``), in BIDS order."""
_BIDS_RE = re.compile(r"(?:^|_)(" + "|".join(BIDS_ENTITIES) + r")-([A-Za-z0-9]+)")


def parse_bids_name(name: str | os.PathLike) -> dict[str, str]:
    """BIDS-like entities of a file name.

    ``sub-01_ses-A_task-rest_run-2_bold.tsv`` -> ``{"sub": "01", "ses": "A", "task": "rest", "run": "2"}``
    (entities :data:`BIDS_ENTITIES`; absent ones left out; only the file name is read, not its folders).
    """
    stem = Path(name).name
    return {key: value for key, value in _BIDS_RE.findall(stem)}


def _read_text(path: Path) -> np.ndarray:
    return read_text_table(path)[0]


def _read_mat(path: Path, mat_key: str | None, allow_vector: bool = False) -> np.ndarray:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"expected a MATLAB v5 .mat file, got a v7.3 (HDF5) file {path}; re-save with -v7") from err
    except Exception as err:  # scipy raises MatReadError, ValueError, TypeError... for damaged files
        raise ValueError(f"expected a readable MATLAB .mat file, got {path}: {type(err).__name__}: {err}") from err
    arrays = {k: v for k, v in content.items() if not k.startswith("__")}
    if mat_key is None:
        def usable(v) -> bool:
            if not (isinstance(v, np.ndarray) and v.ndim == 2 and np.issubdtype(v.dtype, np.number)):
                return False
            return min(v.shape) > 1 or (allow_vector and v.size > 1)

        candidates = [k for k, v in arrays.items() if usable(v)]
        if len(candidates) != 1:
            raise ValueError(f"expected one 2-D array in {path} (or pass mat_key), got keys {sorted(arrays)}")
        mat_key = candidates[0]
    if mat_key not in arrays:
        raise ValueError(f"expected key {mat_key!r} in {path}, got keys {sorted(arrays)}")
    return np.asarray(arrays[mat_key], dtype=np.float64)


def read_array_file(path: str | os.PathLike, *, mat_key: str | None = None, allow_vector: bool = False,
                    suffixes: Sequence[str] = TIMESERIES_SUFFIXES, what: str = "time-series") -> np.ndarray:
    """The numeric array of one ``.1D/.tsv/.csv/.txt/.npy/.mat`` file, float64, as stored.

    Parameters
    ----------
    path : path-like
    mat_key : str, optional
        Variable of a ``.mat`` file (default: its only 2-D numeric array).
    allow_vector : bool
        Also pick a ``1 x L`` / ``L x 1`` array from a ``.mat`` file when ``mat_key`` is None.
    suffixes : sequence of str
        Accepted (lower-case) suffixes.
    what : str
        Kind of file, for messages.

    Returns
    -------
    numpy.ndarray (any shape; text files give 2-D)

    Raises
    ------
    ValueError
        Whatever goes wrong, naming the file (unknown suffix, unreadable or non-numeric content).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ValueError(f"expected a {what} file ending in {list(suffixes)}, got {path.name!r}")
    if not path.is_file():
        raise FileNotFoundError(f"expected a {what} file at {path}, found none")
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix == ".mat":
            data = _read_mat(path, mat_key, allow_vector)
        else:
            data = _read_text(path)
        data = np.asarray(data, dtype=np.float64)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"expected a readable numeric {what} file, got {path}: {err}") from err
    except (OSError, UnicodeDecodeError, EOFError, TypeError, KeyError) as err:
        raise ValueError(f"expected a readable {what} file, got {path}: {type(err).__name__}: {err}") from err
    return data


def looks_like_connectivity(array: np.ndarray, atol: float = 1e-6) -> bool:
    """True for a square, symmetric matrix whose diagonal is all 1 (correlation) or all 0 (Fisher z).

    Such a file is a ready connectivity matrix, not a (T, N) time series.
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        return False
    if not np.all(np.isfinite(array)) or not np.allclose(array, array.T, rtol=0, atol=atol):
        return False
    diagonal = np.diagonal(array)
    return bool(np.allclose(diagonal, 1.0, rtol=0, atol=atol) or np.allclose(diagonal, 0.0, rtol=0, atol=atol))


def read_roi_labels(path: str | os.PathLike) -> list[str] | None:
    """The ROI labels a text time-series file names in its header, in column order, or None.

    A first line of names (``.tsv``/``.csv``/``.txt``), or an ABIDE ``rois_*.1D`` header of ``#``-prefixed
    labels (:func:`lcm_hf.text_tables.read_text_table`). Binary files (``.npy``, ``.mat``) carry none.
    """
    path = Path(path)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    return read_text_table(path)[1]


def read_timeseries_file(path: str | os.PathLike, *, mat_key: str | None = None,
                         transpose: bool = False) -> np.ndarray:
    """Read one ROI time-series file.

    Parameters
    ----------
    path : path-like
        ``.1D``, ``.txt``, ``.tsv``, ``.csv``, ``.npy`` or ``.mat``.
    mat_key : str, optional
        Variable holding the time series in a ``.mat`` file.
    transpose : bool
        The file is ROI x time; return its transpose.

    Returns
    -------
    numpy.ndarray, shape (T, N), float32

    Raises
    ------
    ValueError
        Naming the file: unreadable, not 2-D, NaN/inf values, or a square symmetric matrix with a
        unit (or zero) diagonal ("looks like a connectivity matrix": use ``--format connectivity``).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "sub-01_bold.npy")
    >>> np.save(path, np.arange(12.0).reshape(4, 3))
    >>> read_timeseries_file(path).shape
    (4, 3)
    """
    path = Path(path)
    data = read_array_file(path, mat_key=mat_key)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D (T, N) time series in {path}, got shape {data.shape}")
    if transpose:
        data = data.T
    bad = ~np.isfinite(data)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"expected finite values in the time series {path}, got {int(bad.sum())} NaN/inf "
                         f"(first at row {row}, column {column})")
    if looks_like_connectivity(data):
        n = data.shape[0]
        raise ValueError(
            f"{path} looks like a connectivity matrix ({n} x {n}, symmetric, unit or zero diagonal), not a (T, N) "
            "time series; use --format connectivity (lcm_hf.data.import_connectivity_folder) for ready FC matrices")
    return np.ascontiguousarray(data, dtype=np.float32)


def read_phenotypes(path_or_frame, id_column: str | Sequence[str] | None = None):
    """A phenotype table as a pandas DataFrame (CSV, TSV by suffix, or an existing DataFrame).

    ``id_column`` (one name or several: subject and scan columns) is read as strings, so ids
    like ``"007"`` keep their zeros.
    """
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame.copy()
    path = Path(path_or_frame)
    if not path.is_file():
        raise FileNotFoundError(f"expected a phenotype table at {path}, found none")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    columns = [id_column] if isinstance(id_column, str) else [c for c in (id_column or ()) if c]
    try:
        return pd.read_csv(path, sep=sep, dtype={c: str for c in columns} or None)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ValueError(f"expected a readable CSV/TSV phenotype table, got {path}: {err}") from err


__all__ = [
    "BIDS_ENTITIES",
    "SCAN_ENTITIES",
    "TIMESERIES_SUFFIXES",
    "looks_like_connectivity",
    "parse_bids_name",
    "read_array_file",
    "read_phenotypes",
    "read_roi_labels",
    "read_timeseries_file",
]
