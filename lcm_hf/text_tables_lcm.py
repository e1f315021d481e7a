"""Text tables of ROI time series (``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``): their numbers and the ROI labels
their headers name: the text-table parsing of the one time-series reader (:mod:`lcm_hf.timeseries_files_lcm`, which
the importers, the pipeline and the CLI call); part of the model core shipped as Hub remote code (numpy only).
"""

from __future__ import annotations

import os

import numpy as np

from .errors_lcm import LcmInputError

TEXT_SUFFIXES = (".1d", ".txt", ".tsv", ".csv")
MISSING_CELLS = ("", "n/a", "N/A", "NA")
"""Cells read as a missing value (NaN), besides ``NaN`` / ``nan`` (which ``float`` parses): an empty cell (how pandas
writes NaN to CSV/TSV), BIDS ``n/a`` and R's ``NA``. Whether a row of them (a censored volume) is accepted is the
reader's policy (:func:`lcm_hf.timeseries_files_lcm.read_timeseries`, ``censored_volumes``)."""


def is_float(token: str) -> bool:
    """Whether a text token parses as a number (a header cell that is an ROI code, a data value)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def is_value(token: str) -> bool:
    """Whether a text token is a data cell: a number or a missing value (:data:`MISSING_CELLS`)."""
    return token in MISSING_CELLS or is_float(token)


def read_text_table(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """A text table of numbers (one row per TR) and the column labels its header names.

    Lines starting with ``#`` (ABIDE ``rois_*.1D``: ``#2001 #2002 ...``) and a first row of names are headers;
    a first column of non-numeric values (time or ROI labels) is dropped. Missing cells (:data:`MISSING_CELLS`: empty,
    ``n/a``, ``NA``) are read as NaN, like ``NaN`` itself.

    Returns
    -------
    data : numpy.ndarray, shape (T, N), float64
    labels : list of N str, or None when no header names the N columns

    Raises
    ------
    ValueError
        Naming the file and line: no numeric rows, a ragged row, a non-number.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    delimiter = "," if suffix == ".csv" else ("\t" if suffix == ".tsv" else None)
    rows, headers = [], []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle):
            line = line.strip() if delimiter is None else line.strip(" \r\n")  # "\t\t": a row of empty cells
            if not line:
                continue
            if line.startswith("#"):  # ABIDE rois_*.1D: "#2001 #2002 ..."
                headers.append([t.strip().lstrip("#").strip() for t in line.lstrip("#").split(delimiter)])
                continue
            tokens = [t.strip() for t in (line.split(delimiter) if delimiter else line.split())]
            if delimiter == "\t" and len(tokens) == 1:  # a .tsv written with spaces
                tokens = line.split()
            if not rows and not all(is_value(t) for t in tokens[1:] or tokens):
                if delimiter == "\t" and len(tokens) > 1:  # as before: names without empty edge cells
                    tokens = [t.strip() for t in line.strip().split("\t")]
                headers.append(tokens)  # a header row of names
                continue
            rows.append((line_number, tokens))
    if not rows:
        raise LcmInputError(f"expected numeric rows in {path}, found none")
    rows, headers = _drop_trailing_delimiter(rows, headers, delimiter)
    label_column = not is_value(rows[0][1][0])
    if label_column:  # the first column holds labels
        rows = [(n, tokens[1:]) for n, tokens in rows]
    width = len(rows[0][1])
    data = np.empty((len(rows), width), dtype=np.float64)
    for i, (line_number, tokens) in enumerate(rows):
        if len(tokens) != width:
            raise LcmInputError(f"expected {width} columns on every row of {path}, got {len(tokens)} on line {line_number + 1}")
        try:
            data[i] = [np.nan if t in MISSING_CELLS else float(t) for t in tokens]
        except ValueError as err:
            raise LcmInputError(f"expected numbers on line {line_number + 1} of {path}: {err}") from None
    labels = None
    for header in reversed(headers):
        header = [t for t in header if t] if delimiter is None else header
        if len(header) == width + label_column:
            labels = header[label_column:]
            break
    return data, labels


def _drop_trailing_delimiter(rows, headers, delimiter):
    """Rows (and headers) without the empty last cell of a delimiter ending every line (``1<TAB>2<TAB>3<TAB>``): a
    line terminator, not a column of missing values."""
    if delimiter is None or not all(len(tokens) > 1 and tokens[-1] == "" for _, tokens in rows):
        return rows, headers
    width = len(rows[0][1])
    if any(len(header) == width and header[-1] != "" for header in headers):  # a header names that column
        return rows, headers
    return [(n, tokens[:-1]) for n, tokens in rows], [header[:-1] if len(header) == width else header for header in headers]


__all__ = ["MISSING_CELLS", "TEXT_SUFFIXES", "is_float", "is_value", "read_text_table"]
