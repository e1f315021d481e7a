"""Readers for ROI time-series files, array files and phenotype tables.

Supported files (time series: rows are time points, columns are ROIs):

- ``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``: delimited text (tab, semicolon, comma or whitespace, detected
  from the content; decimal commas read as numbers; :mod:`lcm_hf.text_tables_lcm`). Header lines are
  skipped: lines starting with ``#`` (ABIDE ``rois_*.1D`` headers), a first line of names, and a first
  line of ROI codes above decimal data (``--header`` decides). A first column of non-numeric values (ROI
  or time labels) is dropped.
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
from ..text_tables_lcm import DELIMITER_NAMES, TEXT_SUFFIXES, read_text_table
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


def read_roi_labels(path: str | os.PathLike, header: str = "auto") -> list[str] | None:
    """The ROI labels a text time-series file names in its header, in column order, or None.

    A first line of names (``.tsv``/``.csv``/``.txt``), or an ABIDE ``rois_*.1D`` header of ``#``-prefixed
    labels (:func:`lcm_hf.text_tables_lcm.read_text_table`). Binary files (``.npy``, ``.mat``) carry none.
    """
    path = Path(path)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    return read_text_table(path, header=header)[1]


def read_timeseries_file(path: str | os.PathLike, *, mat_key: str | None = None,
                         transpose: bool = False, censored_volumes: str = "refuse", header: str = "auto") -> np.ndarray:
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
    header : {"auto", "yes", "no"}
        Text tables: whether the first line that does not start with ``#`` is a header row
        (:func:`lcm_hf.text_tables_lcm.read_text_table`).

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
    return read_timeseries(path, mat_key=mat_key, transpose=transpose, censored_volumes=censored_volumes,
                           header=header).timeseries


TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
"""Suffixes of phenotype and edge tables: delimited text (delimiter detected from the content) or an Excel workbook."""
XLSX_EXTRA = 'pip install "lcm-hf[xlsx]"'
_DECIMAL_COMMA = re.compile(r"[+-]?(?:[0-9]+,[0-9]*|,[0-9]+)(?:[eE][+-]?[0-9]+)?")


def table_delimiter(lines: Sequence[str], source: str = "the table") -> str | None:
    """The delimiter of a text table from its first lines: the one of tab, ``;``, ``,`` that splits every line
    (quotes respected) into the same number (>= 2) of columns, else whitespace when it does; None when no
    delimiter does (a one-column table). Two delimiters that both do are refused, naming both.
    """
    import csv

    lines = [line for line in lines if line.strip()][:50]
    text = "\n".join(lines)
    fits = []
    for delimiter in ("\t", ";", ","):
        if delimiter in text:
            counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
            if len(counts) == 1 and min(counts) >= 2:
                fits.append((delimiter, counts.pop()))
    if not fits:
        counts = {len(line.split()) for line in lines}
        return None if len(counts) != 1 or min(counts, default=0) < 2 else r"\s+"
    if len(fits) > 1:
        (one, n), (two, m) = fits[:2]
        raise LcmInputError(f"expected one delimiter in {source}, got two that split every line evenly: "
                            f"{DELIMITER_NAMES[one]} ({n} columns) and {DELIMITER_NAMES[two]} ({m} columns); "
                            "save it with tabs (.tsv) or commas (.csv) only")
    return fits[0][0]


def _decimal_commas(table, delimiter: str | None, skip: Sequence[str], source: str):
    """Columns written with decimal commas (``30,5``) as float64; refused in a comma-delimited table (quoted) and
    beside columns with decimal points (one decimal mark per table)."""
    import pandas as pd

    commas, points = [], []
    for column in table.columns:
        if column in skip:
            continue
        values = table[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            present = [str(v).strip() for v in values if isinstance(v, str) and v.strip()]
            if present and all(_DECIMAL_COMMA.fullmatch(v) or v.lstrip("+-").isdigit() for v in present) \
                    and any("," in v for v in present):
                commas.append((column, next(v for v in present if "," in v)))
        elif pd.api.types.is_float_dtype(values):
            finite = values.dropna().to_numpy()
            if len(finite) and (finite != np.round(finite)).any():
                points.append((column, float(finite[finite != np.round(finite)][0])))
    if not commas:
        return table
    column, value = commas[0]
    if delimiter == ",":
        raise LcmInputError(f"expected decimal points in the comma-delimited {source}, got decimal commas in column "
                            f"{column!r} ({value!r}); save it with ';' or tabs between columns, or '.' decimals")
    if points:
        raise LcmInputError(f"expected one decimal mark in {source}, got decimal commas in column {column!r} "
                            f"({value!r}) and decimal points in column {points[0][0]!r} ({points[0][1]!r})")
    table = table.copy()
    for column, _ in commas:
        table[column] = pd.to_numeric(table[column].str.strip().str.replace(",", ".", regex=False))
    return table


def read_table(path: str | os.PathLike, *, str_columns: Sequence[str] = (), nrows: int | None = None,
               what: str = "phenotype table"):
    """A phenotype or edge table as a pandas DataFrame: ``.csv`` / ``.tsv`` / ``.txt`` (delimiter detected from the
    content: tab, ``;``, ``,`` or whitespace; columns of decimal commas ``30,5`` read as numbers in a tab/``;``
    table) or ``.xlsx`` (its first sheet; needs ``openpyxl``: ``pip install "lcm-hf[xlsx]"``).

    Parameters
    ----------
    path : path-like
    str_columns : sequence of str
        Columns read as strings (ids like ``"007"`` keep their zeros).
    nrows : int, optional
        Read only the header and this many rows.
    what : str
        The kind of table, for messages.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Naming the file: unreadable, two delimiters that fit, decimal commas in a comma table or beside decimal
        points, an ``.xlsx`` without ``openpyxl`` (naming the extra), an old ``.xls`` workbook.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a {what} at {path}, found none")
    dtype = {c: str for c in str_columns} or None
    with open(path, "rb") as handle:
        magic = handle.read(8)
    suffix = path.suffix.lower()
    if suffix == ".xls" or magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise LcmInputError(f"expected a .csv/.tsv/.txt/.xlsx {what}, got an old Excel (.xls) workbook {path}: save "
                            "it as .xlsx or CSV")
    if suffix == ".xlsx" or magic.startswith(b"PK\x03\x04"):
        if suffix != ".xlsx":
            raise LcmInputError(f"expected a text {what} in {path}, got a zip file (an Excel workbook?): name it "
                                ".xlsx or save the sheet as CSV")
        try:
            import openpyxl  # noqa: F401  (pandas' reader of .xlsx)
        except ImportError:
            raise LcmInputError(f"expected openpyxl to read the Excel {what} {path}: {XLSX_EXTRA} (or save the "
                                "sheet as CSV)") from None
        try:
            return pd.read_excel(path, dtype=dtype, nrows=nrows)
        except Exception as err:  # zipfile.BadZipFile, KeyError, ValueError... for a damaged workbook
            raise LcmInputError(f"expected a readable Excel .xlsx {what}, got {path}: {type(err).__name__}: "
                                f"{err}") from err
    try:
        with open(path, encoding="utf-8-sig") as handle:
            head = [line for _, line in zip(range(60), handle)]
        delimiter = table_delimiter(head, str(path))
        table = pd.read_csv(path, sep=delimiter if delimiter is not None else ",", dtype=dtype, nrows=nrows,
                            encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        if isinstance(err, LcmInputError):
            raise
        raise LcmInputError(f"expected a readable CSV/TSV {what}, got {path}: {err}") from err
    return _decimal_commas(table, delimiter, list(str_columns), f"the {what} {path}")


def read_phenotypes(path_or_frame, id_column: str | Sequence[str] | None = None, what: str = "phenotype table"):
    """A phenotype table as a pandas DataFrame (``.csv`` / ``.tsv`` / ``.txt`` with the delimiter detected from the
    content, ``.xlsx`` with ``openpyxl``: :func:`read_table`; or an existing DataFrame).

    ``id_column`` (one name or several: subject and scan columns) is read as strings, so ids
    like ``"007"`` keep their zeros. ``what`` names the table in messages.
    """
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame.copy()
    columns = [id_column] if isinstance(id_column, str) else [c for c in (id_column or ()) if c]
    return read_table(path_or_frame, str_columns=columns, what=what)


__all__ = [
    "BIDS_ENTITIES",
    "SCAN_ENTITIES",
    "TABLE_SUFFIXES",
    "TIMESERIES_SUFFIXES",
    "looks_like_connectivity",
    "parse_bids_name",
    "read_array_file",
    "read_phenotypes",
    "read_roi_labels",
    "read_table",
    "read_timeseries_file",
    "table_delimiter",
]
