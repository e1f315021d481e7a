"""Text tables of ROI time series (``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``): their numbers and the ROI labels
their headers name: the text-table parsing of the one time-series reader (:mod:`lcm_hf.timeseries_files_lcm`, which
the importers, the pipeline and the CLI call); part of the model core shipped as Hub remote code (numpy only).
"""

from __future__ import annotations

import os

import numpy as np

from .errors_lcm import LcmInputError

TEXT_SUFFIXES = (".1d", ".txt", ".tsv", ".csv")


def is_float(token: str) -> bool:
    """Whether a text token parses as a number (a header cell that is an ROI code, a data value)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_text_table(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """A text table of numbers (one row per TR) and the column labels its header names.

    Lines starting with ``#`` (ABIDE ``rois_*.1D``: ``#2001 #2002 ...``) and a first row of names are headers;
    a first column of non-numeric values (time or ROI labels) is dropped.

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
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):  # ABIDE rois_*.1D: "#2001 #2002 ..."
                headers.append([t.strip().lstrip("#").strip() for t in line.lstrip("#").split(delimiter)])
                continue
            tokens = [t.strip() for t in (line.split(delimiter) if delimiter else line.split())]
            if delimiter == "\t" and len(tokens) == 1:  # a .tsv written with spaces
                tokens = line.split()
            if not rows and not all(is_float(t) for t in tokens[1:] or tokens):
                headers.append(tokens)  # a header row of names
                continue
            rows.append((line_number, tokens))
    if not rows:
        raise LcmInputError(f"expected numeric rows in {path}, found none")
    label_column = not is_float(rows[0][1][0])
    if label_column:  # the first column holds labels
        rows = [(n, tokens[1:]) for n, tokens in rows]
    width = len(rows[0][1])
    data = np.empty((len(rows), width), dtype=np.float64)
    for i, (line_number, tokens) in enumerate(rows):
        if len(tokens) != width:
            raise LcmInputError(f"expected {width} columns on every row of {path}, got {len(tokens)} on line {line_number + 1}")
        try:
            data[i] = [float(t) for t in tokens]
        except ValueError as err:
            raise LcmInputError(f"expected numbers on line {line_number + 1} of {path}: {err}") from None
    labels = None
    for header in reversed(headers):
        header = [t for t in header if t] if delimiter is None else header
        if len(header) == width + label_column:
            labels = header[label_column:]
            break
    return data, labels


__all__ = ["TEXT_SUFFIXES", "is_float", "read_text_table"]
