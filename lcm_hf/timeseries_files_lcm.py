"""The one reader of a user's ROI time-series file: `lcm-hf predict`, `lcm-hf embed`, the pipeline (in an exported
folder too) and the dataset importers (:mod:`lcm_hf.data.readers`) all call :func:`read_timeseries`.

Formats (rows are time points, columns ROIs): ``.npy`` (a 2-D array), text tables ``.1D`` / ``.txt`` / ``.tsv`` /
``.csv`` (:mod:`lcm_hf.text_tables_lcm`: tab, semicolon, comma or whitespace delimiters and decimal commas detected
from the content; ``#`` header lines, a first row of names or of ROI codes give the ROI labels, a first column
of labels is dropped) and MATLAB v5 ``.mat`` (the array under ``mat_key``, or the only 2-D numeric array; scipy is
imported only to read one). Checks: a 2-D array of finite numbers that is not a ready connectivity matrix
(square, symmetric, unit or zero diagonal: such a file would be predicted as N time points).

Censored (scrubbed) volumes: a row whose every cell is missing (an empty cell, ``NaN``/``nan``, BIDS ``n/a``, ``NA``,
or NaN in a ``.npy``/``.mat`` array) is a censored volume, whatever the spelling. They are refused by default, naming
the file, the rows and the flag; with ``censored_volumes="drop"`` (``--censored-volumes drop``) they come back as
NaN rows in their place in time: FC uses the valid volumes only and no window holds a censored volume (the window
rule, :func:`lcm_hf.windows_lcm.window_spans`). A row with only some ROIs missing is not a censored volume: it is
refused under either policy, as are infinite values. The TR comes from a
BIDS sidecar ``<name>.json`` (``RepetitionTime``) when there is one.

Part of the model core shipped as Hub remote code: imports only numpy and its sibling `text_tables_lcm` at module level.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from .errors_lcm import LcmInputError
from .text_tables_lcm import TEXT_SUFFIXES, read_text_table

TIMESERIES_SUFFIXES = (".1d", ".tsv", ".csv", ".txt", ".npy", ".mat")
CENSORED_POLICIES = ("refuse", "drop")
"""What :func:`read_timeseries` does with censored (scrubbed) volumes: refuse the file (the default) or keep them as
NaN rows, which the window rule (:mod:`lcm_hf.windows_lcm`) leaves out of every window and FC."""
CENSORED_FLAG = "--censored-volumes drop (censored_volumes='drop' in Python)"
CONNECTIVITY_HINT = ("use --format connectivity (lcm_hf.data.import_connectivity_folder) to import ready FC "
                     "matrices, or pass one to the pipeline as {'connectivity': matrix}")


class TimeseriesFile(NamedTuple):
    """What :func:`read_timeseries` reads from one file."""

    timeseries: np.ndarray
    """(T, N) float32."""
    roi_labels: list[str] | None
    """The N ROI labels a text header names, in column order; None when the file names none."""
    repetition_time: float | None
    """TR in seconds from the BIDS sidecar ``<name>.json``; None without one."""


def _read_mat(path: str, mat_key: str | None, allow_vector: bool) -> np.ndarray:
    try:  # optional dependency, kept out of the remote-code import check
        from scipy.io import loadmat
    except ImportError as err:
        raise ImportError(f"reading the MATLAB file {path} needs scipy: pip install scipy") from err
    try:
        content = loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise LcmInputError(f"expected a MATLAB v5 .mat file, got a v7.3 (HDF5) file {path}; re-save with -v7") from err
    except Exception as err:  # scipy raises MatReadError, ValueError, TypeError... for damaged files
        raise LcmInputError(f"expected a readable MATLAB .mat file, got {path}: {type(err).__name__}: {err}") from err
    arrays = {k: v for k, v in content.items() if not k.startswith("__")}
    if mat_key is None:
        def usable(v) -> bool:
            if not (isinstance(v, np.ndarray) and v.ndim == 2 and np.issubdtype(v.dtype, np.number)):
                return False
            return min(v.shape) > 1 or (allow_vector and v.size > 1)

        candidates = [k for k, v in arrays.items() if usable(v)]
        if len(candidates) != 1:
            raise LcmInputError(f"expected one 2-D array in {path} (or pass mat_key), got keys {sorted(arrays)}")
        mat_key = candidates[0]
    if mat_key not in arrays:
        raise LcmInputError(f"expected key {mat_key!r} in {path}, got keys {sorted(arrays)}")
    return np.asarray(arrays[mat_key], dtype=np.float64)


def read_array(path: str | os.PathLike, *, mat_key: str | None = None, allow_vector: bool = False,
               suffixes=TIMESERIES_SUFFIXES, what: str = "time-series",
               header: str = "auto") -> tuple[np.ndarray, list[str] | None]:
    """The numeric array of one ``.1D/.tsv/.csv/.txt/.npy/.mat`` file, float64 as stored, with the column labels
    a text header names.

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
    header : {"auto", "yes", "no"}
        Text tables: whether the first line that does not start with ``#`` is a header row
        (:func:`lcm_hf.text_tables_lcm.read_text_table`; auto: names, or ROI codes above decimal data).

    Returns
    -------
    data : numpy.ndarray float64 (any shape; text files give 2-D)
    labels : list of str or None (text headers only)

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file: unknown suffix, unreadable or non-numeric content.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in suffixes:
        raise LcmInputError(f"expected a {what} file ending in {list(suffixes)}, got {os.path.basename(path)!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expected a {what} file at {path}, found none")
    labels = None
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix == ".mat":
            data = _read_mat(path, mat_key, allow_vector)
        elif suffix in TEXT_SUFFIXES:
            data, labels = read_text_table(path, header=header)
        else:
            raise LcmInputError(f"expected a {what} file ending in {list(TIMESERIES_SUFFIXES)}, got {path!r}")
        data = np.asarray(data, dtype=np.float64)
    except ValueError as err:
        if path in str(err):
            raise
        raise LcmInputError(f"expected a readable numeric {what} file, got {path}: {err}") from err
    except (OSError, UnicodeDecodeError, EOFError, TypeError, KeyError) as err:
        raise LcmInputError(f"expected a readable {what} file, got {path}: {type(err).__name__}: {err}") from err
    return data, labels


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


def read_repetition_time(path: str | os.PathLike) -> float | None:
    """TR in seconds from the BIDS sidecar ``<name>.json`` of a file (``RepetitionTime``), or None without one."""
    sidecar = os.path.splitext(os.fspath(path))[0] + ".json"
    if not os.path.isfile(sidecar):
        return None
    try:
        with open(sidecar, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError) as err:
        raise LcmInputError(f"expected a readable JSON sidecar {sidecar}: {err}") from err
    value = metadata.get("RepetitionTime") if isinstance(metadata, dict) else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise LcmInputError(f"expected RepetitionTime in seconds (> 0) in {sidecar}, got {value!r}")
    return None if value is None else float(value)


def _rows(indices, shown: int = 5) -> str:
    """``"TRs 3, 4, 9 ..."``: the first row indices (0-based TRs) of a list."""
    indices = [int(i) for i in indices]
    return f"TR{'s' if len(indices) > 1 else ''} " + ", ".join(map(str, indices[:shown])) + (
        " ..." if len(indices) > shown else "")


def check_missing_values(data: np.ndarray, path: str, censored_volumes: str = "refuse") -> int:
    """Apply the censored-volume policy to a (T, N) array read from ``path``; return its number of censored volumes.

    Parameters
    ----------
    data : numpy.ndarray, shape (T, N)
    path : str
        Named in errors.
    censored_volumes : {"refuse", "drop"}
        Whole rows of NaN (censored volumes): refused, or kept (counted) for the window rule to leave out.

    Raises
    ------
    ValueError
        Censored volumes under ``"refuse"`` (the file, the count, the first TRs and the flag); under either policy a
        row with only some ROIs missing, infinite values, or no valid volume at all.
    """
    if censored_volumes not in CENSORED_POLICIES:
        raise LcmInputError(f"expected censored_volumes to be one of {list(CENSORED_POLICIES)}, got {censored_volumes!r}")
    missing = np.isnan(data)
    whole = missing.all(axis=1) if data.shape[1] else np.zeros(data.shape[0], dtype=bool)
    bad = np.isinf(data) | (missing & ~whole[:, None])  # inf, and NaN in a row that is not wholly censored
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        partial = np.flatnonzero((missing & ~whole[:, None]).any(axis=1))
        hint = (f"; {partial.size} row{'s' if partial.size > 1 else ''} with only some ROIs missing ({_rows(partial)}): "
                "a censored volume is a whole row of missing cells, fill or remove the missing ROIs") if partial.size else ""
        raise LcmInputError(f"expected finite values in the time series {path}, got {int(bad.sum())} NaN/inf "
                            f"(first at row {row}, column {column}){hint}")
    if not whole.any():
        return 0
    censored = np.flatnonzero(whole)
    if censored_volumes == "refuse":
        raise LcmInputError(
            f"expected no censored volumes (rows of empty, NaN or n/a cells) in the time series {path}, got "
            f"{censored.size} of {data.shape[0]} ({_rows(censored)}; 0-based): pass {CENSORED_FLAG} to compute FC on "
            "the valid volumes only (no window holds a censored one)")
    if censored.size == data.shape[0]:
        raise LcmInputError(f"expected valid volumes in the time series {path}, got all {data.shape[0]} censored")
    return int(censored.size)


def read_timeseries(path: str | os.PathLike, *, mat_key: str | None = None, transpose: bool = False,
                    censored_volumes: str = "refuse", header: str = "auto") -> TimeseriesFile:
    """Read one ROI time-series file with what it says about itself: the one reader of every path.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.mat`` or a text table ``.1D`` / ``.txt`` / ``.tsv`` / ``.csv`` (one row per TR).
    mat_key : str, optional
        Variable holding the time series in a ``.mat`` file (default: its only 2-D numeric array).
    transpose : bool
        The file is ROI x time; return its transpose.
    censored_volumes : {"refuse", "drop"}
        Censored (scrubbed) volumes, rows of missing cells (empty, ``NaN``, ``n/a``, ``NA``): refused (default), or
        kept as NaN rows in their place in time, which every window and FC leaves out (:mod:`lcm_hf.windows_lcm`).
    header : {"auto", "yes", "no"}
        Text tables: whether the first line that does not start with ``#`` is a header row (auto: a row of names,
        or of ROI codes above decimal data; a row of codes above whole numbers is refused as ambiguous). The
        rule reads the file only, so a file reads the same at import and at prediction.

    Returns
    -------
    TimeseriesFile
        ``timeseries`` (T, N) float32 (NaN rows: censored volumes, only with ``censored_volumes="drop"``),
        ``roi_labels`` (list of N str or None), ``repetition_time`` (float or None).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file: another suffix, unreadable, not 2-D, censored volumes (by default: naming the rows and the
        flag), a row with only some ROIs missing, inf values, or a square symmetric matrix with a unit (or zero)
        diagonal ("looks like a connectivity matrix", saying how to pass ready FC instead).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "sub-01_bold.npy")
    >>> np.save(path, np.arange(12.0).reshape(4, 3))
    >>> read_timeseries(path).timeseries.shape
    (4, 3)
    """
    path = os.fspath(path)
    data, labels = read_array(path, mat_key=mat_key, header=header)
    if data.ndim != 2:
        raise LcmInputError(f"expected a 2-D (T, N) time series in {path}, got shape {data.shape}")
    if transpose:
        data, labels = data.T, None
    check_missing_values(data, path, censored_volumes)
    if looks_like_connectivity(data):
        n = data.shape[0]
        raise LcmInputError(f"{path} looks like a connectivity matrix ({n} x {n}, symmetric, unit or zero diagonal), "
                            f"not a (T, N) time series; {CONNECTIVITY_HINT}")
    return TimeseriesFile(np.ascontiguousarray(data, dtype=np.float32), labels, read_repetition_time(path))


__all__ = ["CENSORED_FLAG", "CENSORED_POLICIES", "TIMESERIES_SUFFIXES", "TimeseriesFile", "check_missing_values",
           "looks_like_connectivity", "read_array", "read_repetition_time", "read_timeseries"]
