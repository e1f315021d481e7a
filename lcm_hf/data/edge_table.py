"""Edge tables: one CSV/TSV with a row per subject, phenotype columns and the FC's upper-triangle edges as columns.

The most common published FC format (one row per subject; ``subject_id, sex, age, ROI_A.ROI_B, ROI_A.ROI_C, ...``).
Each row becomes one scan whose N x N matrix is rebuilt by :func:`~lcm_hf.data.connectivity_import.vector_to_matrix`
and checked by :func:`~lcm_hf.data.connectivity_import.check_connectivity_matrix` (the one home of the
vector <-> matrix rule: row-major upper triangle, ``numpy.triu_indices`` order, without the diagonal unless
``vector_diagonal``). The other columns are the phenotypes.

Edge columns are recognised, in this order:

1. ``edge_prefix`` given (``--edge-prefix``): every column whose name starts with it; the rest of the name is an
   edge index (``fc_0 ... fc_K``) or a ROI pair (``fc_ROI_A.ROI_B``).
2. Columns named ``e<index>`` (``e0 ... eK-1``, or ``e1 ... eK``): no ROI labels.
3. Columns named as ROI pairs ``<ROI_A><sep><ROI_B>`` with ``sep`` one of :data:`PAIR_SEPARATORS` (``.``, ``-``,
   ``__``): the longest run of consecutive columns holding the separator that forms a whole upper triangle.

Index edges are put in index order (every index from the first to the last, once). Pair names give the ROI labels
(recorded as the set's ``roi_labels``, the contract a model checks at prediction) and must come in row-major order
(``A.B, A.C, ..., B.C, ...``); a table whose pairs are complete but in another order is refused, naming the first
column out of place. The number of edge columns K must be ``N(N-1)/2`` (``N(N+1)/2`` with the diagonal): otherwise
the error names K and the nearest valid counts.

Example
-------
>>> ds = import_edge_table("fc_edges.csv", subject_column="participant_id")     # doctest: +SKIP
>>> find_edge_columns(["subject_id", "age", "A.B", "A.C", "B.C"]).labels
['A', 'B', 'C']
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from ..text_tables_lcm import is_float
from .connectivity_import import (
    CONNECTIVITY_VALUES,
    check_connectivity_matrix,
    nearest_vector_sizes,
    rois_of_vector,
    vector_to_matrix,
)
from .readers import TABLE_SUFFIXES, read_table

PAIR_SEPARATORS = (".", "-", "__")
"""Separators of ROI-pair edge names (``ROI_A.ROI_B``), tried in this order."""
INDEX_PREFIX = "e"
"""Index edge names without ``edge_prefix``: ``e0 ... eK-1``."""


@dataclass
class EdgeColumns:
    """The edge columns of a table: ``columns`` in upper-triangle (row-major) order, N, and the ROI labels when the
    names carry them (else None)."""

    columns: list[str]
    num_rois: int
    labels: list[str] | None
    rule: str

    def describe(self) -> str:
        what = f"{len(self.columns)} edge columns ({self.rule}: {self.columns[0]} ... {self.columns[-1]})"
        return f"{what}, N = {self.num_rois} ROIs"


def _triangle(n: int, diagonal: bool) -> list[tuple[int, int]]:
    rows, cols = np.triu_indices(n, k=0 if diagonal else 1)
    return list(zip(rows.tolist(), cols.tolist()))


def _count_error(count: int, diagonal: bool, where: str) -> LcmInputError:
    convention = "N(N+1)/2 (with the diagonal)" if diagonal else "N(N-1)/2 (an upper triangle without the diagonal)"
    nearest = ", ".join(f"{size} (N={n})" for size, n in nearest_vector_sizes(count, diagonal))
    other = rois_of_vector(count, not diagonal)
    hint = f"; it fits N={other} {'without' if diagonal else 'with'} the diagonal: {'drop' if diagonal else 'pass'} " \
        "--vector-diagonal" if other else ""
    return LcmInputError(f"edge columns: expected K = {convention} columns, got K = {count} in {where} (nearest valid "
                         f"counts: {nearest}{hint})")


def parse_pair_names(names: Sequence[str], separator: str, diagonal: bool = False) -> list[str] | None:
    """The ROI labels of edge names ``<A><separator><B>`` forming a whole upper triangle, or None.

    Raises ValueError when the names form the triangle's pairs but not in row-major order (naming the first
    column out of place). ROI labels may themselves hold the separator.
    """
    names = list(names)
    n = rois_of_vector(len(names), diagonal)
    if n is None or not names:
        return None
    first_row = n if diagonal else n - 1
    head = names[0]
    starts = [m.start() for m in re.finditer(re.escape(separator), head)]
    for start in starts:
        root = head[:start]
        prefix = root + separator
        if not root or not all(name.startswith(prefix) for name in names[:first_row]):
            continue
        others = [name[len(prefix):] for name in names[:first_row]]
        labels = others if diagonal else [root, *others]
        if diagonal and labels[0] != root:
            continue
        if len(set(labels)) != n or any(not label for label in labels):
            continue
        expected = [f"{labels[i]}{separator}{labels[j]}" for i, j in _triangle(n, diagonal)]
        if expected == names:
            return labels
        if set(expected) == set(names):
            raise _order_error(expected, names)
    split = [name.split(separator) for name in names]
    if all(len(parts) == 2 and all(parts) for parts in split):  # unambiguous pairs: all there, in another order?
        pairs = [tuple(parts) for parts in split]  # row-major order lists the ROIs as first members, the last one after
        labels = list(dict.fromkeys([a for a, _ in pairs] + [b for _, b in pairs]))
        if len(labels) == n and len(set(pairs)) == len(pairs):
            index = {label: i for i, label in enumerate(labels)}
            if {tuple(sorted((index[a], index[b]))) for a, b in pairs} == set(_triangle(n, diagonal)):
                expected = [f"{labels[i]}{separator}{labels[j]}" for i, j in _triangle(n, diagonal)]
                raise _order_error(expected, names)
    return None


def _order_error(expected: list[str], names: list[str]) -> LcmInputError:
    position = next(i for i, (a, b) in enumerate(zip(expected, names)) if a != b)
    return LcmInputError(
        f"edge columns: expected the ROI pairs in upper-triangle row-major order ({', '.join(expected[:3])} ...), "
        f"got {names[position]!r} at edge {position} where {expected[position]!r} belongs; reorder the columns "
        "(or name them e0 ... eK)")


def _index_edges(columns: Sequence[str], prefix: str, rule: str, diagonal: bool, where: str) -> EdgeColumns | None:
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = [(int(m.group(1)), c) for c in columns if (m := pattern.match(c))]
    if not found:
        return None
    found.sort()
    indices = [i for i, _ in found]
    start = indices[0]
    if start not in (0, 1) or indices != list(range(start, start + len(indices))):
        missing = sorted(set(range(start, indices[-1] + 1)) - set(indices))[:3]
        duplicate = sorted({i for i in indices if indices.count(i) > 1})[:3]
        got = f"missing {[f'{prefix}{i}' for i in missing]}" if missing else (
            f"duplicates {[f'{prefix}{i}' for i in duplicate]}" if duplicate else f"a first index {start}")
        raise LcmInputError(f"edge columns {prefix}<index>: expected every index from {prefix}0 (or {prefix}1) to the "
                            f"last once, got {got} in {where}")
    n = rois_of_vector(len(found), diagonal)
    if n is None:
        raise _count_error(len(found), diagonal, where)
    return EdgeColumns([c for _, c in found], n, None, rule)


def _pair_runs(columns: Sequence[str], prefix: str, separator: str) -> list[list[str]]:
    """Runs of consecutive columns ``prefix<A><separator><B>``, longest first."""
    runs, run = [], []
    for column in columns:
        if column.startswith(prefix) and separator in column[len(prefix):] and not is_float(column):
            run.append(column)
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return sorted(runs, key=len, reverse=True)


def _pair_edges(columns: Sequence[str], prefix: str, diagonal: bool) -> EdgeColumns | None:
    """The longest run of consecutive columns ``prefix<A><sep><B>`` that forms a whole upper triangle."""
    for separator in PAIR_SEPARATORS:
        for run in _pair_runs(columns, prefix, separator):
            for start in range(max(0, len(run) - 2)):  # at least 3 edges (N >= 3): one 'A.B' column is no table
                names = [c[len(prefix):] for c in run[start:]]
                labels = parse_pair_names(names, separator, diagonal)
                if labels is not None:
                    rule = f"ROI pairs {prefix}A{separator}B"
                    return EdgeColumns(list(run[start:]), len(labels), labels, rule)
    return None


def find_edge_columns(columns: Sequence[str], *, edge_prefix: str | None = None, diagonal: bool = False,
                      where: str = "the table") -> EdgeColumns | None:
    """The edge columns of a table's header (module docstring for the rules), or None when it has none.

    Parameters
    ----------
    columns : sequence of str
        The header.
    edge_prefix : str, optional
        Every column starting with it is an edge (``--edge-prefix``).
    diagonal : bool
        The edges include the diagonal (``N(N+1)/2``; default ``N(N-1)/2``).
    where : str
        The table's name, for errors.

    Raises
    ------
    ValueError
        K not a triangle number (naming K and the nearest valid counts), missing or repeated edge indices, ROI pairs
        out of row-major order, or ``edge_prefix`` matching no column.
    """
    columns = [str(c) for c in columns]
    if edge_prefix:
        selected = [c for c in columns if c.startswith(edge_prefix)]
        if not selected:
            raise LcmInputError(f"--edge-prefix {edge_prefix!r}: expected edge columns starting with it in {where}, got "
                                f"none; columns: {columns[:8]}{' ...' if len(columns) > 8 else ''}")
        indexed = _index_edges(selected, edge_prefix, f"{edge_prefix}<index>", diagonal, where)
        if indexed is not None and len(indexed.columns) == len(selected):
            return indexed
        pairs = _pair_edges(selected, edge_prefix, diagonal)
        if pairs is not None and len(pairs.columns) == len(selected):
            return pairs
        if rois_of_vector(len(selected), diagonal) is None:
            raise _count_error(len(selected), diagonal, where)
        return EdgeColumns(selected, rois_of_vector(len(selected), diagonal), None, f"prefix {edge_prefix!r}")
    indexed = _index_edges(columns, INDEX_PREFIX, "e<index>", diagonal, where)
    if indexed is not None:
        return indexed
    pairs = _pair_edges(columns, "", diagonal)
    other = _pair_edges(columns, "", not diagonal) if pairs is None else None
    if other is not None:  # the pairs form a triangle with (without) the diagonal: say which flag
        raise LcmInputError(
            f"edge columns: expected ROI pairs {'with' if diagonal else 'without'} the diagonal "
            f"({'A.A, A.B, ...' if diagonal else 'A.B, A.C, ...'}), got {len(other.columns)} pairs "
            f"{'without' if diagonal else 'with'} it ({other.columns[0]} ... {other.columns[-1]}) in {where}: "
            f"{'drop' if diagonal else 'pass'} --vector-diagonal")
    if pairs is None:  # ROI-pair-like names that form no triangle: say why when their count cannot be one
        for separator in PAIR_SEPARATORS:
            run = next(iter(_pair_runs(columns, "", separator)), [])
            if len(run) >= 3 and rois_of_vector(len(run), diagonal) is None:
                raise _count_error(len(run), diagonal, f"{where} (columns {run[0]} ... {run[-1]})")
    return pairs


def describe_edge_table(path: str | os.PathLike) -> str | None:
    """A short description of the edge columns of a table (its header only is read, :func:`~lcm_hf.data.readers.read_table`),
    or None when the file is not such a table. Used to point users to ``--format edges``."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES or not path.is_file():
        return None
    try:
        header = list(read_table(path, nrows=0, what="table").columns)
    except Exception:  # any unreadable file is simply not an edge table here
        return None
    for diagonal in (False, True):
        try:
            found = find_edge_columns(header, diagonal=diagonal)
        except ValueError:  # edge-like names that do not form a table (this way): not said to be one
            continue
        if found is not None and len(found.columns) >= 3:
            return found.describe()
    return None


def refuse_edge_table_input(path: str | os.PathLike, phenotypes=None, fmt: str = "connectivity",
                            max_files: int = 3) -> None:
    """Refuse, pointing to ``--format edges``, an input of a folder format that is one edge table: the input itself
    is a table file, or a folder whose only data files are tables (at most ``max_files``) of which one holds edges.

    Raises
    ------
    ValueError
        Naming the table and ``--format edges`` (or, for another file, saying a folder is expected).
    """
    from .readers import TIMESERIES_SUFFIXES

    path = Path(path)
    if path.is_file():
        found = describe_edge_table(path)
        if found:
            raise LcmInputError(f"{path} is one table with a row per subject and {found}: read it with --format edges "
                                f"(--format {fmt} reads a folder of per-scan files)")
        raise LcmInputError(f"expected a folder of per-scan files for --format {fmt}, got the file {path} (one table with "
                            "a row per subject and FC edge columns is read with --format edges)")
    if not path.is_dir():
        return
    files = []
    for item in path.rglob("*"):
        if item.is_file() and item.name.lower().endswith(TIMESERIES_SUFFIXES) and not item.name.startswith("."):
            files.append(item)
            if len(files) > max_files:
                return
    if not files or any(item.suffix.lower() not in TABLE_SUFFIXES for item in files):
        return
    for item in files:
        found = describe_edge_table(item)
        if found:
            others = [f.name for f in files if f != item]
            beside = f" (beside {', '.join(others)})" if others else ""
            raise LcmInputError(f"{path} holds no per-scan files but the table {item.name}{beside} with a row per subject "
                                f"and {found}: read it with --format edges (build_dataset.py {item} --format edges ...)")


def _present(value):
    """``value``, or None for an empty cell (None, NaN, blank text)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _read_table(path: Path, subject_column, scan_column):
    from .folders import load_table

    return load_table(path, subject_column, scan_column, None, what="edge table")


def edge_values(table, columns: Sequence[str], where: str) -> np.ndarray:
    """The (rows, K) float64 values of the edge columns; a ValueError names the first non-numeric or empty cell."""
    import pandas as pd

    try:  # the usual table: every edge a number (one conversion of the whole block)
        values = table[list(columns)].to_numpy(dtype=np.float64)
        if np.isfinite(values).all():
            return values
    except (TypeError, ValueError):
        pass
    values = np.empty((len(table), len(columns)), dtype=np.float64)  # find the first bad cell, column by column
    for k, column in enumerate(columns):
        raw = table[column]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = numeric.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = raw.iloc[row]
            what = "an empty cell" if pd.isna(cell) else f"{cell!r}"
            raise LcmInputError(f"expected a number in every edge cell of {where}, got {what} in column {column!r} at "
                                f"data row {row + 1} ({int(bad.sum())} such cells in that column)")
        values[:, k] = numeric.to_numpy(dtype=np.float64)
    return values


def import_edge_table(
    path: str | os.PathLike,
    *,
    subject_column: str | None = None,
    scan_column: str | None = None,
    site_column: str | None = None,
    phenotype_columns: Sequence[str] | None = None,
    edge_prefix: str | None = None,
    values: str = "correlation",
    vector_diagonal: bool = False,
    dataset_name: str | None = None,
):
    """Import one table with a row per subject (or per scan): phenotype columns + upper-triangle edge columns.

    Parameters
    ----------
    path : path-like
        A ``.csv`` / ``.tsv`` / ``.txt`` table (tab, ``;``, ``,`` or whitespace delimiter detected from the content,
        decimal commas in a tab/``;`` table read as numbers) or an ``.xlsx`` workbook (with ``openpyxl``:
        ``pip install "lcm-hf[xlsx]"``), read by :func:`~lcm_hf.data.readers.read_table`.
    subject_column : str, optional
        Column of subject ids (default: the first of ``subject_id``, ``participant_id``, ``subject``, ``SUB_ID``).
    scan_column : str, optional
        Column naming the scan when a subject has several rows (else a subject's second row is refused).
    site_column : str, optional
        Column copied to ``site`` (default: ``site`` / ``SITE_ID`` when present, else "unknown").
    phenotype_columns : sequence of str, optional
        Phenotype columns to keep (default: every column that is not an edge, the subject, scan or site column).
    edge_prefix : str, optional
        Every column starting with it is an edge (module docstring for the default rules).
    values : {"correlation", "fisher_z"}
        What the edges hold: the stored diagonal is 1 or 0, correlations are checked to lie in [-1, 1].
    vector_diagonal : bool
        The edges include the diagonal (``N(N+1)/2`` columns).
    dataset_name : str, optional
        Value of the ``dataset`` column (default: the table's file stem).

    Returns
    -------
    datasets.Dataset
        One row per table row: ``subject_id``, ``scan_id`` (the scan column, else ``row-<n>``), ``dataset``,
        ``site``, ``connectivity`` (Array2D (N, N) float32), the phenotype columns and, when the edge names carry
        them, ``roi_labels``.

    Raises
    ------
    ValueError
        No edge columns (the header is described), K not ``N(N-1)/2`` (K and the nearest valid counts named), pairs
        out of order, a non-numeric or empty edge cell, an asymmetric/out-of-range row (named by row and subject),
        a repeated subject without ``scan_column``, missing columns.
    """
    from .columns import missing_column_message
    from .contract import add_contract_columns
    from .folders import SITE_COLUMNS, build_dataset
    from .matching import clean_value

    if values not in CONNECTIVITY_VALUES:
        raise LcmInputError(f"expected values 'correlation' or 'fisher_z', got {values!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"expected an edge table (.csv/.tsv) at {path}, found none")
    if path.is_dir():
        raise LcmInputError(f"expected one edge table (.csv/.tsv) with a row per subject, got the folder {path} "
                            "(a folder of per-scan FC files is read with --format connectivity)")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise LcmInputError(f"expected an edge table ending in {list(TABLE_SUFFIXES)}, got {path.name!r}")
    table, subject_column, scan_column = _read_table(path, subject_column, scan_column)
    where = str(path)
    edges = find_edge_columns(list(table.columns), edge_prefix=edge_prefix, diagonal=vector_diagonal, where=where)
    if edges is None:
        shown = list(table.columns)[:8]
        raise LcmInputError(
            f"expected edge columns in {where} (ROI pairs like ROI_A.ROI_B / ROI_A-ROI_B, e0 ... eK, or pass "
            f"--edge-prefix), got columns {shown}{' ...' if len(table.columns) > 8 else ''}")
    edge_set = set(edges.columns)
    if site_column is None:
        site_column = next((c for c in SITE_COLUMNS if c in table.columns and c not in edge_set), None)
    elif site_column not in table.columns:
        raise LcmInputError(missing_column_message("site", site_column, list(table.columns), where))
    id_columns = {subject_column, scan_column, site_column}
    if phenotype_columns is None:
        phenotype_columns = [c for c in table.columns if c not in edge_set and c not in id_columns]
    else:
        for column in phenotype_columns:
            if column not in table.columns or column in edge_set:
                raise LcmInputError(missing_column_message("phenotype", column,
                                                        [c for c in table.columns if c not in edge_set], where))
    subjects = [_present(clean_value(v)) for v in table[subject_column]]
    empty = [i for i, s in enumerate(subjects) if s is None]
    if empty:
        raise LcmInputError(f"expected a subject id in every row of {where}, got an empty {subject_column!r} at data "
                            f"row {empty[0] + 1}")
    scans = [_present(clean_value(v)) for v in table[scan_column]] if scan_column else [None] * len(table)
    seen: dict[tuple, int] = {}
    for i, key in enumerate(zip(map(str, subjects), map(str, scans))):
        if key in seen:
            hint = "" if scan_column else "; a table with several rows per subject names its scan column (--scan-column)"
            raise LcmInputError(f"expected one row per {'scan' if scan_column else 'subject'} in {where}, got subject "
                                f"{key[0]!r} at data rows {seen[key] + 1} and {i + 1}{hint}")
        seen[key] = i
    vectors = edge_values(table, edges.columns, where)
    fill = CONNECTIVITY_VALUES[values]
    records, arrays = [], []
    name = dataset_name or path.stem
    for i in range(len(table)):
        source = f"{where} data row {i + 1} (subject {subjects[i]!s})"
        matrix = vector_to_matrix(vectors[i], diagonal=vector_diagonal, fill=fill, num_rois=edges.num_rois,
                                  source=source)
        arrays.append(check_connectivity_matrix(matrix, values=values, source=source))
        record = {"subject_id": str(subjects[i]), "scan_id": str(scans[i]) if scans[i] is not None else f"row-{i + 1}",
                  "dataset": name, "site": "unknown"}
        if site_column is not None:
            site = _present(clean_value(table[site_column].iloc[i]))
            record["site"] = "unknown" if site is None else str(site)
        for column in phenotype_columns:
            record[column] = clean_value(table[column].iloc[i])
        records.append(record)
    if not records:
        raise LcmInputError(f"expected at least one data row in {where}, got none")
    dataset = build_dataset(records, arrays, list(phenotype_columns), representation="connectivity")
    return add_contract_columns(dataset, roi_labels=edges.labels)


__all__ = ["EdgeColumns", "PAIR_SEPARATORS", "describe_edge_table", "edge_values", "find_edge_columns",
           "import_edge_table", "parse_pair_names", "refuse_edge_table_input"]
