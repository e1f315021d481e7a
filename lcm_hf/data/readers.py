"""Readers for per-subject ROI time-series files and phenotype tables.

Supported files (rows are time points, columns are ROIs):

- ``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``: delimited text (whitespace, tab or comma). Header
  lines are skipped: lines starting with ``#`` (ABIDE ``rois_*.1D`` headers) and a first line
  of non-numeric names. A first column of non-numeric values (ROI or time labels) is dropped.
- ``.npy``: a 2-D array.
- ``.mat``: a MATLAB (v5) file; the time series is the array under ``mat_key`` (or the only
  2-D numeric array when ``mat_key`` is None).

Arrays that are clearly ROI x time (``transpose="auto"`` is off by default) can be flipped
with ``transpose=True``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

TIMESERIES_SUFFIXES = (".1d", ".tsv", ".csv", ".txt", ".npy", ".mat")
BIDS_ENTITIES = ("sub", "ses", "task", "run")
_BIDS_RE = re.compile(r"(?:^|_)(sub|ses|task|run)-([A-Za-z0-9]+)")


def parse_bids_name(name: str | os.PathLike) -> dict[str, str]:
    """BIDS-like entities of a file name: ``sub-01_ses-A_task-rest_run-2_bold.tsv`` ->
    ``{"sub": "01", "ses": "A", "task": "rest", "run": "2"}`` (absent entities left out)."""
    stem = Path(name).name
    return {key: value for key, value in _BIDS_RE.findall(stem)}


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_text(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    delimiter = "," if suffix == ".csv" else ("\t" if suffix == ".tsv" else None)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tokens = [t.strip() for t in (line.split(delimiter) if delimiter else line.split())]
            if delimiter == "\t" and len(tokens) == 1:  # a .tsv written with spaces
                tokens = line.split()
            if not rows and not all(_is_float(t) for t in tokens[1:] or tokens):
                continue  # header row of names
            rows.append((line_number, tokens))
    if not rows:
        raise ValueError(f"expected numeric rows in {path}, found none")
    if not all(_is_float(t) for t in rows[0][1][:1]):  # first column holds labels
        rows = [(n, tokens[1:]) for n, tokens in rows]
    width = len(rows[0][1])
    data = np.empty((len(rows), width), dtype=np.float64)
    for i, (line_number, tokens) in enumerate(rows):
        if len(tokens) != width:
            raise ValueError(f"expected {width} columns on every row of {path}, got {len(tokens)} on line {line_number + 1}")
        try:
            data[i] = [float(t) for t in tokens]
        except ValueError as err:
            raise ValueError(f"expected numbers on line {line_number + 1} of {path}: {err}") from None
    return data


def _read_mat(path: Path, mat_key: str | None) -> np.ndarray:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"expected a MATLAB v5 .mat file, got a v7.3 (HDF5) file {path}; re-save with -v7") from err
    arrays = {k: v for k, v in content.items() if not k.startswith("__")}
    if mat_key is None:
        candidates = [k for k, v in arrays.items() if isinstance(v, np.ndarray) and v.ndim == 2
                      and np.issubdtype(v.dtype, np.number) and min(v.shape) > 1]
        if len(candidates) != 1:
            raise ValueError(f"expected one 2-D array in {path} (or pass mat_key), got keys {sorted(arrays)}")
        mat_key = candidates[0]
    if mat_key not in arrays:
        raise ValueError(f"expected key {mat_key!r} in {path}, got keys {sorted(arrays)}")
    return np.asarray(arrays[mat_key], dtype=np.float64)


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
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIMESERIES_SUFFIXES:
        raise ValueError(f"expected a time-series file ending in {list(TIMESERIES_SUFFIXES)}, got {path.name!r}")
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif suffix == ".mat":
        data = _read_mat(path, mat_key)
    else:
        data = _read_text(path)
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D (T, N) time series in {path}, got shape {data.shape}")
    if transpose:
        data = data.T
    return np.ascontiguousarray(data, dtype=np.float32)


def read_phenotypes(path_or_frame, id_column: str | None = None):
    """A phenotype table as a pandas DataFrame (CSV, TSV by suffix, or an existing DataFrame).

    ``id_column`` is read as strings, so ids like ``"007"`` keep their zeros.
    """
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame.copy()
    path = Path(path_or_frame)
    if not path.is_file():
        raise FileNotFoundError(f"expected a phenotype table at {path}, found none")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    return pd.read_csv(path, sep=sep, dtype={id_column: str} if id_column else None)


__all__ = ["BIDS_ENTITIES", "TIMESERIES_SUFFIXES", "parse_bids_name", "read_phenotypes", "read_timeseries_file"]
