"""Text tables of ROI time series (``.1D`` / ``.txt`` / ``.tsv`` / ``.csv``): their numbers and the ROI labels
their headers name: the text-table parsing of the one time-series reader (:mod:`lcm_hf.timeseries_files_lcm`, which
the importers, the pipeline and the CLI call); part of the model core shipped as Hub remote code (numpy only).

Delimiter and decimal mark come from the file's content, whatever its suffix (:func:`detect_text_format`): tab,
semicolon, comma or whitespace, with decimal points or decimal commas (``0,5;1,2`` or ``0,5<TAB>1,2``: read as
0.5 and 1.2; a comma-delimited file cannot hold decimal commas). Each reading of the first lines is tried; when two
readings give different numbers (``0,5`` as one column of 0.5, or as two columns 0 and 5) the file is refused as
ambiguous, never guessed.

Header rows (``header="auto"``, the default): lines starting with ``#`` (ABIDE ``rois_*.1D``: ``#2001 #2002 ...``),
leading rows holding names, and a first row of ROI codes: whole numbers written without a decimal point or
exponent (``2001 2002 ...``), all distinct, at least two, above rows with at least one value written otherwise
(decimals: ``0.53``). A first row of codes above rows that are all whole numbers too is refused as ambiguous, naming
``header="yes"`` / ``"no"`` (``--header``). ``header="yes"``: the first line that does not start with ``#`` is a
header row, whatever it holds; ``header="no"``: every such line is data (a row of names is an error).
A header whose first cell is empty (``,roi_a,roi_b``: pandas' ``to_csv`` with its index) marks the first column as
row labels, dropped like a first column of non-numeric labels (``TR1``, ``TR2``, ...).

Missing cells (:data:`MISSING_TOKENS`: empty, ``n/a``, ``NA``, any case) are read as NaN, like ``NaN`` itself; whether
a row of them (a censored volume) is accepted is the reader's policy (:func:`lcm_hf.timeseries_files_lcm.read_timeseries`,
``censored_volumes``). A delimiter ending every line (``1<TAB>2<TAB>``) is a line terminator, not a column.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

from .errors_lcm import LcmInputError

TEXT_SUFFIXES = (".1d", ".txt", ".tsv", ".csv")
HEADER_CHOICES = ("auto", "yes", "no")
DELIMITERS = ("\t", ";", ",", None)
"""Delimiters tried, in this order of preference when readings agree (None: runs of whitespace)."""
DELIMITER_NAMES = {"\t": "tab", ";": "semicolon", ",": "comma", None: "whitespace"}
SAMPLE_LINES = 50
"""Non-empty, non-``#`` lines from the top of a file on which its delimiter and decimal mark are detected."""
MISSING_TOKENS = ("", "n/a", "na")
"""Missing cells, compared in lower case: empty (how pandas writes NaN to CSV/TSV), BIDS ``n/a``, R's ``NA``. They
decide no reading and are read as NaN."""
_CODE = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class TextFormat(NamedTuple):
    """How a text table is written."""

    delimiter: str | None
    """``"\\t"``, ``";"``, ``","`` or None (whitespace)."""
    decimal_comma: bool
    """Numbers are written ``0,5`` (read as 0.5)."""

    def describe(self) -> str:
        return f"{DELIMITER_NAMES[self.delimiter]}-delimited with decimal {'commas' if self.decimal_comma else 'points'}"


def is_float(token: str) -> bool:
    """Whether a text token parses as a number (a header cell that is an ROI code, a data value)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def is_missing(token: str) -> bool:
    """Whether a text cell is a missing value (:data:`MISSING_TOKENS`; ``NaN`` itself parses as a number)."""
    return token.lower() in MISSING_TOKENS


def _number(token: str, decimal_comma: bool) -> float:
    if decimal_comma:
        if "." in token:  # one decimal mark per file
            raise ValueError(f"could not convert string to float: {token!r} (a decimal point among decimal commas)")
        token = token.replace(",", ".")
    return float(token)


def _is_number(token: str, decimal_comma: bool) -> bool:
    try:
        _number(token, decimal_comma)
    except ValueError:
        return False
    return True


def _tokens(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        parts = line.split()
    else:
        parts = [part.strip() for part in line.split(delimiter)]
    return [part.strip('"') for part in parts] if '"' in line else parts


def _numeric_row(tokens: list[str], decimal_comma: bool, missing: bool = False) -> bool:
    """A row of numbers (its first cell may be a label): not a header row of names. ``missing``: empty and ``n/a``
    cells count as numbers (detection: they decide no reading)."""
    return all((missing and t.lower() in MISSING_TOKENS) or _is_number(t, decimal_comma) for t in tokens[1:] or tokens)


def _reading(lines: list[str], fmt: TextFormat):
    """(data signature, whether a header row has one cell per column, two or more) of the sample read as ``fmt``,
    or None when ``fmt`` cannot read it (no numeric rows, ragged rows, a cell that is no number)."""
    rows = [_tokens(line, fmt.delimiter) for line in lines]
    data_rows = [tokens for tokens in rows if _numeric_row(tokens, fmt.decimal_comma, True)]
    if fmt.delimiter is not None and data_rows and all(len(t) > 1 and t[-1] == "" for t in data_rows):
        rows = [t[:-1] if len(t) > 1 and t[-1] == "" else t for t in rows]  # a delimiter ending every line
    start = next((i for i, tokens in enumerate(rows) if _numeric_row(tokens, fmt.decimal_comma, True)), None)
    if start is None:
        return None
    data = rows[start:]
    width = len(data[0])
    if any(len(tokens) != width or not _numeric_row(tokens, fmt.decimal_comma, True) for tokens in data):
        return None
    label = _label_column(data[0], fmt.decimal_comma)
    if start and len(rows[start - 1]) > 1 and len(rows[start - 1]) not in (width, width - label):
        return None  # a header row naming other columns: read_text_table refuses it
    cells = [tokens[label:] for tokens in data]
    if fmt.decimal_comma and not any("," in t for row in cells for t in row):
        return None  # no decimal comma: the decimal-point reading of the same cells
    try:
        signature = tuple(tuple(repr(_number(t, fmt.decimal_comma)) if t.lower() not in MISSING_TOKENS else "?" + t
                                for t in row) for row in cells)
    except ValueError:  # a first cell that is no number below a first row whose first cell is one
        return None
    header_fits = bool(rows[:start]) and width > 1 and len(rows[start - 1]) == width  # a header row confirms it
    return signature, header_fits


def _columns(signature) -> str:
    return f"{len(signature[0])} column{'s' if len(signature[0]) != 1 else ''}"


def detect_text_format(lines: list[str], source: str = "the file") -> TextFormat | None:
    """The delimiter and decimal mark of a text table, from its (non-empty, non-``#``) lines.

    Every reading (:data:`DELIMITERS` x decimal point / comma) of the first :data:`SAMPLE_LINES` lines is tried;
    readings that give the same numbers are one (the first delimiter in :data:`DELIMITERS` is kept). Among readings
    that differ, the one whose header row has one cell per column (two or more) wins when it is the only one.

    Returns
    -------
    TextFormat, or None when no reading gives numbers (the caller reports the first bad line).

    Raises
    ------
    LcmInputError
        Two readings give different numbers (``0,5``: one column of 0.5, or two columns 0 and 5), naming both.
    """
    sample = lines[:SAMPLE_LINES]
    text = "\n".join(sample)
    found: list[tuple[TextFormat, tuple, bool]] = []
    for delimiter in DELIMITERS:
        if delimiter is not None and delimiter not in text:
            continue
        for decimal_comma in (False, True):
            if decimal_comma and (delimiter == "," or "," not in text):
                continue
            fmt = TextFormat(delimiter, decimal_comma)
            reading = _reading(sample, fmt)
            if reading is None:
                continue
            same = next((i for i, (_, other, _) in enumerate(found) if other == reading[0]), None)
            if same is None:
                found.append((fmt, *reading))
            elif reading[1]:  # the same numbers, and this reading's header fits: the kept one is confirmed
                found[same] = (found[same][0], found[same][1], True)
    if len(found) > 1 and sum(fits for *_, fits in found) == 1:
        found = [item for item in found if item[2]]
    if len(found) > 1:
        (first, one, _), (second, two, _) = found[:2]
        raise LcmInputError(
            f"expected one way to read {source}, got two: {first.describe()} ({_columns(one)}) or "
            f"{second.describe()} ({_columns(two)}); write it with '.' decimals (0.5) and tabs between columns "
            "(or save a .npy)")
    return found[0][0] if found else None


def _likeliest_format(lines: list[str], suffix: str) -> TextFormat:
    """The format of a file no reading fits (a bad cell): the first of tab, ``;``, ``,`` found the same number of
    times on every line (else the suffix's: ``,`` for .csv, tab for .tsv, whitespace), decimal commas when that
    is not ``,`` and the lines hold commas."""
    for delimiter in DELIMITERS[:-1]:
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and counts.pop() > 0:
            break
    else:
        delimiter = "," if suffix == ".csv" else ("\t" if suffix == ".tsv" else None)
    return TextFormat(delimiter, delimiter != "," and any("," in line for line in lines))


def _integers(rows, label: int) -> bool:
    """Every cell of ``rows`` is written as a whole number (missing cells aside)."""
    return all(_INTEGER.fullmatch(t) or t.lower() in MISSING_TOKENS for _, tokens in rows for t in tokens[label:])


def read_text_table(path: str | os.PathLike, header: str = "auto") -> tuple[np.ndarray, list[str] | None]:
    """A text table of numbers (one row per TR) and the column labels its header names.

    Delimiter and decimal mark are detected from the content (module docstring); lines starting with ``#``
    (ABIDE ``rois_*.1D``: ``#2001 #2002 ...``), a first row of names and (``header="auto"``) a first row of ROI
    codes above decimal data are headers; a first column of non-numeric values (time or ROI labels) is dropped.

    Parameters
    ----------
    path : path-like
    header : {"auto", "yes", "no"}
        Whether the first line that does not start with ``#`` is a header row: detected (auto), always (yes) or
        never (no).

    Returns
    -------
    data : numpy.ndarray, shape (T, N), float64
    labels : list of N str, or None when no header names the N columns

    Raises
    ------
    ValueError
        Naming the file and line: no numeric rows, a ragged row, a non-number, two readings of the delimiter or
        decimal mark, a first row that may be ROI codes or data (``header="auto"``), a header row of another
        width than the data.
    """
    path = os.fspath(path)
    if header not in HEADER_CHOICES:
        raise LcmInputError(f"expected header 'auto', 'yes' or 'no', got {header!r}")
    with open(path, "rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            raise LcmInputError(f"expected a text table in {path}, got a zip file (an Excel workbook?): save the sheet "
                                "as .csv/.tsv (or the array as .npy)")
    with open(path, encoding="utf-8-sig") as handle:
        lines = [(number, line.strip(" \r\n")) for number, line in enumerate(handle.read().splitlines())]
    lines = [(number, line) for number, line in lines if line]
    body = [line for _, line in lines if not line.startswith("#")]
    fmt = detect_text_format(body, path)
    if fmt is None:  # no reading gives numbers: the likeliest one, to name the first bad line
        fmt = _likeliest_format(body[:SAMPLE_LINES], os.path.splitext(path)[1].lower())
    delimiter, decimal_comma = fmt
    rows, headers, named_rows = [], [], []
    first_body = next((number for number, line in lines if not line.startswith("#")), None)
    for line_number, line in lines:
        if line.startswith("#"):  # ABIDE rois_*.1D: "#2001 #2002 ..."
            headers.append([t.strip().lstrip("#").strip() for t in line.lstrip("#").split(delimiter)])
            continue
        tokens = _tokens(line, delimiter)
        if header == "yes" and line_number == first_body:
            headers.append(tokens)  # header="yes": the first line that is not '#' is the header row
            named_rows.append((line_number, tokens))
            continue
        if not rows and not _numeric_row(tokens, decimal_comma, missing=True):
            if header == "no":
                raise LcmInputError(f"expected numbers on line {line_number + 1} of {path} (header='no' / --header "
                                    f"no: no header row), got {', '.join(map(repr, tokens[:3]))}; use --header auto")
            headers.append(tokens)  # a header row of names
            named_rows.append((line_number, tokens))
            continue
        rows.append((line_number, tokens))
    if not rows:
        raise LcmInputError(f"expected numeric rows in {path}, found none")
    if _ends_with_delimiter(rows, headers, delimiter):  # "1<TAB>2<TAB>": the last delimiter ends the line
        width = len(rows[0][1])
        rows = [(n, tokens[:-1]) for n, tokens in rows]
        headers = [h[:-1] if len(h) == width else h for h in headers]
        named_rows = [(n, h[:-1] if len(h) == width else h) for n, h in named_rows]
    label_column = _label_column(rows[0][1], decimal_comma)
    index_header = not label_column and len(rows[0][1]) > 2 and rows[0][1][0] == ""  # ",2001,2002": pandas' index
    first = rows[0][1][label_column or index_header:]
    if header == "auto" and not named_rows and len(first) >= 2 and all(_CODE.fullmatch(t) for t in first) \
            and len({int(t) for t in first}) == len(first) and len(rows) > 1 and len(rows[1][1]) == len(rows[0][1]):
        if _integers(rows[1:], label_column):
            shown = " ".join(first[:3]) + (" ..." if len(first) > 3 else "")
            raise LcmInputError(
                f"expected a header row or data on line {rows[0][0] + 1} of {path}, got {shown}: ROI codes or the "
                "first time point (every row below is whole numbers too); pass --header yes (a header row) or "
                "--header no (data) (header='yes' / 'no')")
        named_rows.append(rows.pop(0))  # a header row of ROI codes above decimal data
        headers.append(named_rows[-1][1])
        label_column = _label_column(rows[0][1], decimal_comma)
    width = len(rows[0][1])
    named = [h for h in headers if len(h) == width]  # the header rows with a cell per column
    if not label_column and width > 1 and named and named[-1][0] == "":
        label_column = True  # ",roi_a,roi_b": the first column holds row labels (a pandas index)
    data = np.empty((len(rows), width - label_column), dtype=np.float64)
    for i, (line_number, tokens) in enumerate(rows):
        if len(tokens) != width:
            raise LcmInputError(f"expected {width} columns on every row of {path}, got {len(tokens)} on line "
                                f"{line_number + 1}")
        try:
            cells = ["nan" if is_missing(t) else t for t in tokens[label_column:]]
            if decimal_comma:
                cells = [str(_number(t, True)) if "." in t else t.replace(",", ".") for t in cells]
            data[i] = np.asarray(cells, dtype=np.float64) if cells else []
        except ValueError as err:
            raise LcmInputError(f"expected numbers on line {line_number + 1} of {path}: {err}") from None
    if named_rows and len(named_rows[-1][1]) > 1 and len(named_rows[-1][1]) not in (width, width - label_column):
        line_number, cells = named_rows[-1]  # never dropped silently: a header row that names other columns
        raise LcmInputError(f"expected one ROI label per column in the header row (line {line_number + 1}) of {path}, "
                            f"got {len(cells)} labels for {width - label_column} columns; fix the header row")
    labels = None
    for cells in reversed(headers):
        cells = [t for t in cells if t] if delimiter is None else cells
        if len(cells) == width:
            labels = cells[label_column:]
            break
        if len(cells) == width - label_column and label_column:
            labels = cells
            break
    return data, labels


def _label_column(tokens: list[str], decimal_comma: bool) -> bool:
    """A first cell that is neither a number nor a missing value: the first column holds row labels."""
    return len(tokens) > 1 and not (_is_number(tokens[0], decimal_comma) or is_missing(tokens[0]))


def _ends_with_delimiter(rows, headers, delimiter) -> bool:
    """Whether a delimiter ends every data line (``1<TAB>2<TAB>3<TAB>``): a line terminator, not a column of missing
    values (unless a header row names that column)."""
    if delimiter is None or not all(len(tokens) > 1 and tokens[-1] == "" for _, tokens in rows):
        return False
    width = len(rows[0][1])
    return not any(len(header) == width and header[-1] != "" for header in headers)


__all__ = ["DELIMITER_NAMES", "DELIMITERS", "HEADER_CHOICES", "MISSING_TOKENS", "TEXT_SUFFIXES", "TextFormat", "detect_text_format",
           "is_float", "is_missing", "read_text_table"]
