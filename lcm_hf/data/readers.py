"""Readers for ROI time-series files, array files and phenotype tables.

Supported files (time series: rows are time points, columns are ROIs):

- ``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``: delimited text (whitespace, tab or comma). Header
  lines are skipped: lines starting with ``#`` (ABIDE ``rois_*.1D`` headers) and a first line
  of non-numeric names. A first column of non-numeric values (ROI or time labels) is dropped.
  Empty, ``NaN``, ``n/a`` and ``NA`` cells are missing values: a row of them is a censored volume,
  refused unless ``censored_volumes="drop"``.
- ``.npy``: a 2-D array.
- ``.mat``: a MATLAB (v5) file; the array under ``mat_key`` (or the only 2-D numeric array
  when ``mat_key`` is None).

Every read error is a ``ValueError`` naming the file. A time-series file that holds a square,
symmetric matrix with a unit (or zero) diagonal is refused: it is a ready connectivity matrix,
which :func:`~lcm_hf.data.import_connectivity_folder` reads (``build_dataset.py --format connectivity``).
The per-file parsing and checks are the model core's one reader (:mod:`lcm_hf.timeseries_files_lcm`), which
`lcm-hf predict`, `lcm-hf embed` and the pipeline call too; this module adds the importers' helpers.

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

from ..errors_lcm import LcmInputError
from ..text_tables_lcm import TEXT_SUFFIXES, read_text_table
from ..timeseries_files_lcm import TIMESERIES_SUFFIXES, looks_like_connectivity, read_array, read_timeseries

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


def read_array_file(path: str | os.PathLike, *, mat_key: str | None = None, allow_vector: bool = False,
                    suffixes: Sequence[str] = TIMESERIES_SUFFIXES, what: str = "time-series") -> np.ndarray:
    """The numeric array of one ``.1D/.tsv/.csv/.txt/.npy/.mat`` file, float64, as stored
    (:func:`lcm_hf.timeseries_files_lcm.read_array`, the core reader's parsing, without the header labels).

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
    return read_array(path, mat_key=mat_key, allow_vector=allow_vector, suffixes=suffixes, what=what)[0]


def read_roi_labels(path: str | os.PathLike) -> list[str] | None:
    """The ROI labels a text time-series file names in its header, in column order, or None.

    A first line of names (``.tsv``/``.csv``/``.txt``), or an ABIDE ``rois_*.1D`` header of ``#``-prefixed
    labels (:func:`lcm_hf.text_tables_lcm.read_text_table`). Binary files (``.npy``, ``.mat``) carry none.
    """
    path = Path(path)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    return read_text_table(path)[1]


def read_timeseries_file(path: str | os.PathLike, *, mat_key: str | None = None,
                         transpose: bool = False, censored_volumes: str = "refuse") -> np.ndarray:
    """Read one ROI time-series file: the array of :func:`lcm_hf.timeseries_files_lcm.read_timeseries`, the one reader
    that `lcm-hf predict`, `lcm-hf embed` and the pipeline call too (same formats and checks).

    Parameters
    ----------
    path : path-like
        ``.1D``, ``.txt``, ``.tsv``, ``.csv``, ``.npy`` or ``.mat``.
    mat_key : str, optional
        Variable holding the time series in a ``.mat`` file.
    transpose : bool
        The file is ROI x time; return its transpose.
    censored_volumes : {"refuse", "drop"}
        Censored volumes (rows of empty, ``NaN``, ``n/a`` or ``NA`` cells): refused (default) or kept as NaN rows
        (:func:`lcm_hf.timeseries_files_lcm.read_timeseries`).

    Returns
    -------
    numpy.ndarray, shape (T, N), float32

    Raises
    ------
    ValueError
        Naming the file: unreadable, not 2-D, censored volumes (by default), a partly missing row, inf values, or a
        square symmetric matrix with a unit (or zero) diagonal ("looks like a connectivity matrix": use
        ``--format connectivity``).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "sub-01_bold.npy")
    >>> np.save(path, np.arange(12.0).reshape(4, 3))
    >>> read_timeseries_file(path).shape
    (4, 3)
    """
    return read_timeseries(path, mat_key=mat_key, transpose=transpose, censored_volumes=censored_volumes).timeseries


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
        raise LcmInputError(f"expected a readable CSV/TSV phenotype table, got {path}: {err}") from err


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
