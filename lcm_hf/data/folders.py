"""The folder importer core shared by the time-series, NIfTI and connectivity importers.

:func:`import_files` lists nothing itself: given the files, it gives each its identity
(:func:`~lcm_hf.data.matching.file_identity`), matches them to the phenotype table
(:class:`~lcm_hf.data.matching.PhenotypeMatcher`), reports every problem once
(:class:`~lcm_hf.data.matching.MatchReport`), then reads the kept files and builds the dataset:
one row per scan with ``subject_id``, ``scan_id``, ``dataset``, ``site``, the data column,
``session``/``task``/``run`` when the names carry them, and the phenotype columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from .columns import missing_column_message
from .matching import MatchReport, PhenotypeMatcher, check_unmatched, clean_value, file_identity
from .readers import read_phenotypes
from .schema import connectome_features

SUBJECT_COLUMNS = ("subject_id", "participant_id", "subject", "SUB_ID", "Subject")
"""Subject columns looked for (in this order) when none is named."""
SITE_COLUMNS = ("site", "SITE_ID", "site_id")
PHENOTYPE_TABLE_NAMES = ("participants.tsv", "participants.csv", "phenotypes.csv", "phenotypes.tsv", "phenotype.csv",
                         "phenotype.tsv", "phenotypic_v1_0b_preprocessed1.csv")
"""File names (lower case) of phenotype tables: skipped (with a warning) when listing a folder's data files."""
ENTITY_COLUMNS = (("ses", "session"), ("task", "task"), ("run", "run"))


def progress_bar(iterable, enabled: bool, desc: str, total: int | None = None):
    """``tqdm`` over ``iterable`` when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total)


def list_files(folder: Path, pattern: str, recursive: bool, suffixes: Sequence[str], what: str,
               exclude: Sequence = ()) -> list[Path]:
    """Files under ``folder`` matching ``pattern`` whose name ends in one of ``suffixes`` (lower case),
    less the ``exclude`` paths (a phenotype table or atlas kept in the same folder)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a folder of {what} files at {folder}, found none")
    globber = folder.rglob if recursive else folder.glob
    files = sorted(p for p in globber(pattern) if p.is_file() and p.name.lower().endswith(tuple(suffixes)))
    excluded = {Path(e).resolve() for e in exclude if isinstance(e, (str, os.PathLike))}
    files = [p for p in files if p.resolve() not in excluded]
    tables = [p for p in files if p.name.lower() in PHENOTYPE_TABLE_NAMES]
    if tables:  # a stray phenotype table among the series: never read as one
        import warnings

        warnings.warn(f"skipping {', '.join(str(p.relative_to(folder)) for p in tables[:3])} in {folder}: a phenotype "
                      "table by its name, not a data file (pass the table you mean with --phenotypes)",
                      RuntimeWarning, stacklevel=3)
        files = [p for p in files if p not in tables]
    if not files:
        raise LcmInputError(f"expected {what} files ({', '.join(suffixes)}) in {folder}, found none")
    return files


def check_roi_counts(counts: Sequence[tuple[Path, int]]) -> None:
    """Refuse files with different ROI counts, blaming the odd ones: the count of the first file, unless more files
    share another count (then the first file is the odd one). ``counts`` is ``[(path, N), ...]`` in reading order.

    Raises
    ------
    ValueError
        ``expected 8 ROIs (as in the first file a.tsv), got 7 in b.tsv`` or
        ``expected 8 ROIs (as in 11 of 12 files), got 7 in a.tsv (the first file)``, with the number of other odd files.
    """
    if not counts:
        return
    from collections import Counter

    tally = Counter(n for _, n in counts)
    if len(tally) == 1:
        return
    first_path, first_n = counts[0]
    majority, majority_count = tally.most_common(1)[0]
    if majority_count > tally[first_n]:
        expected, where = majority, f"as in {majority_count} of {len(counts)} files"
    else:
        expected, where = first_n, f"as in the first file {first_path.name}"
    odd = [(path, n) for path, n in counts if n != expected]
    path, n = odd[0]
    role = " (the first file)" if path == first_path else ""
    more = f"; {len(odd) - 1} more file{'s' if len(odd) > 2 else ''} differ{'s' if len(odd) == 2 else ''}: " \
        f"{', '.join(p.name for p, _ in odd[1:4])}{' ...' if len(odd) > 4 else ''}" if len(odd) > 1 else ""
    raise LcmInputError(f"expected {expected} ROIs ({where}), got {n} in {path}{role}{more}; every file must have "
                        "the same ROI columns (one atlas)")


def _phenotype_dtype(values) -> str:
    present = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float32"
    return "string"


def build_dataset(records: list[dict], arrays: list[np.ndarray], phenotype_columns: Sequence[str],
                  extra: Mapping[str, str] | None = None, representation: str = "timeseries"):
    """``datasets.Dataset`` of the records (identity + phenotypes) and their arrays (the data column)."""
    import datasets as hfds

    num_rois = arrays[0].shape[1]
    dtypes = {c: _phenotype_dtype([r.get(c) for r in records]) for c in phenotype_columns}
    columns: dict[str, list] = {c: [r.get(c) for r in records] for c in ("subject_id", "scan_id", "dataset", "site")}
    for column, dtype in {**(extra or {}), **dtypes}.items():
        values = [r.get(column) for r in records]
        if dtype == "string":
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
        else:
            values = [np.nan if v is None else float(v) for v in values]
        columns[column] = values
    columns[representation] = arrays
    features = connectome_features(num_rois, dtypes, extra=extra, representation=representation, scan_id=True)
    return hfds.Dataset.from_dict(columns, features=features)


def clash_hint(first: Path, second: Path) -> str:
    """How to keep one of two files of one scan: ``--pattern`` matching the name's part after the BIDS entities
    (``*_desc-aal_timeseries.tsv``), preferring the file that is not an fMRIPrep confounds table."""
    from .readers import BIDS_ENTITIES

    def tail(path: Path) -> str:
        parts = path.name.split("_")
        return "_".join(p for p in parts if p.split("-")[0] not in BIDS_ENTITIES or "-" not in p)

    confounds = [p for p in (first, second) if "confounds" in p.name.lower()]
    keep = next((p for p in (first, second) if p not in confounds), first)
    other = second if keep == first else first
    pattern = f"*{tail(keep)}" if tail(keep) and tail(keep) != tail(other) else None
    what = f" ({other.name} looks like an fMRIPrep confounds table)" if confounds and other in confounds else ""
    if pattern is None:
        return f"keep one of them with --pattern GLOB (pattern=){what}, or name the scans apart (ses-/run-)"
    return f"read only the series with --pattern '{pattern}' (pattern=){what}"


def load_table(phenotypes, subject_column: str | None, scan_column: str | None, id_column: str | None,
               what: str = "phenotype table"):
    """(table, subject column, scan column): the phenotype table with its id columns checked (``what`` names the
    table in read errors)."""
    if subject_column and id_column and subject_column != id_column:
        raise LcmInputError(f"expected one subject column, got subject_column={subject_column!r} and "
                            f"id_column={id_column!r} (id_column is the old name of subject_column)")
    subject_column = subject_column or id_column
    id_columns = [subject_column] if subject_column else list(SUBJECT_COLUMNS)
    table = read_phenotypes(phenotypes, id_column=id_columns + [scan_column], what=what)
    where = "the phenotype table"
    if subject_column is None:
        subject_column = next((c for c in SUBJECT_COLUMNS if c in table.columns), None)
        if subject_column is None:
            raise LcmInputError(f"expected a subject column in {where} (one of {list(SUBJECT_COLUMNS)}, or pass "
                                f"subject_column= / --subject-column), got columns {list(table.columns)}")
    elif subject_column not in table.columns:
        raise LcmInputError(missing_column_message("subject", subject_column, list(table.columns), where))
    if scan_column is not None and scan_column not in table.columns:
        raise LcmInputError(missing_column_message("scan", scan_column, list(table.columns), where))
    return table, subject_column, scan_column


def import_files(folder: Path, files: Sequence[Path], read: Callable[[Path], np.ndarray], phenotypes, *,
                 subject_column: str | None = None, scan_column: str | None = None, id_column: str | None = None,
                 dataset_name: str | None = None, site_column: str | None = None,
                 phenotype_columns: Sequence[str] | None = None, num_rois: int | None = None,
                 subject_pattern: str | None = None, unmatched: str = "warn", progress: bool = False,
                 desc: str = "reading", what: str = "time-series", representation: str = "timeseries"):
    """Match ``files`` to phenotype rows, ``read(path)`` each kept one, build the dataset.

    ``read`` returns (T, N) (time series) or (N, N) (connectivity); every array must have the N of
    the first file. Arguments as in :func:`~lcm_hf.data.import_timeseries_folder`.
    """
    check_unmatched(unmatched)
    table = matcher = None
    if phenotypes is not None:
        table, subject_column, scan_column = load_table(phenotypes, subject_column, scan_column, id_column)
        where = "the phenotype table"
        if site_column is None:
            site_column = next((c for c in SITE_COLUMNS if c in table.columns), None)
        elif site_column not in table.columns:
            raise LcmInputError(missing_column_message("site", site_column, list(table.columns), where))
        if phenotype_columns is None:
            phenotype_columns = [c for c in table.columns if c not in (subject_column, scan_column, site_column)]
        else:
            for column in phenotype_columns:
                if column not in table.columns:
                    raise LcmInputError(missing_column_message("phenotype", column, list(table.columns), where))
        matcher = PhenotypeMatcher(table, subject_column, scan_column)
    phenotype_columns = list(phenotype_columns or [])
    dataset_name = dataset_name or folder.name

    identities = [file_identity(path, subject_pattern) for path in files]
    rows: list[int | None] = [None] * len(files)
    keep = list(range(len(files)))
    if matcher is not None:
        report = MatchReport(source=str(folder), n_files=len(files), n_rows=len(table),
                             duplicates=matcher.duplicates())
        for i, ident in enumerate(identities):
            rows[i] = matcher.match(ident)
            if rows[i] is None:
                name = str(ident.path.relative_to(folder)) if ident.path.is_relative_to(folder) else ident.path.name
                (report.ambiguous_files if matcher.ambiguous else report.unmatched_files).append(name)
        report.unmatched_rows = matcher.unmatched_rows()
        if report.duplicates and scan_column is None:
            report.hint = ("Several rows per subject: for a per-scan table pass scan_column= (--scan-column) "
                           "naming the scan column")
        elif all(r is None for r in rows):
            subjects = sorted({ident.subject for ident in identities})[:3]
            ids = [str(clean_value(v)) for v in table[subject_column].iloc[:3]]
            report.hint = f"No file matched: the files name subjects like {subjects}, the table {ids}"
        report.resolve(unmatched, stacklevel=4)
        if unmatched == "warn":
            keep = [i for i in keep if rows[i] is not None]
    seen: dict[tuple, Path] = {}
    for i in keep:
        ident = identities[i]
        subject = str(clean_value(table[subject_column].iloc[rows[i]])) if rows[i] is not None else ident.subject
        key = (subject, ident.scan_id)
        if key in seen:
            raise LcmInputError(f"expected one file per scan, got {seen[key]} and {ident.path} for subject "
                                f"{subject!r} scan {ident.scan_id!r}; {clash_hint(seen[key], ident.path)}")
        seen[key] = ident.path
    if not keep:
        raise LcmInputError(f"expected at least one {what} file matched to the phenotypes in {folder}, got none")

    records, arrays, counts = [], [], []
    entity_columns: set[str] = set()
    for i in progress_bar(keep, progress, desc):
        ident, row = identities[i], rows[i]
        array = read(ident.path)
        n = array.shape[1]
        if num_rois is not None and n != num_rois:  # given (an atlas's regions): the file is wrong
            raise LcmInputError(f"expected {num_rois} ROIs, got {n} in {ident.path}")
        counts.append((ident.path, n))
        record = {"subject_id": ident.subject, "scan_id": ident.scan_id, "dataset": dataset_name, "site": "unknown"}
        if row is not None:
            record["subject_id"] = str(clean_value(table[subject_column].iloc[row]))
            if site_column is not None:
                record["site"] = str(clean_value(table[site_column].iloc[row]))
            for column in phenotype_columns:
                record[column] = clean_value(table[column].iloc[row])
        for key, column in ENTITY_COLUMNS:
            if key in ident.entities and column not in phenotype_columns:
                record[column] = ident.entities[key]
                entity_columns.add(column)
        records.append(record)
        arrays.append(array)
    check_roi_counts(counts)
    columns = [c for _, c in ENTITY_COLUMNS if c in entity_columns] + phenotype_columns
    return build_dataset(records, arrays, columns, representation=representation)


__all__ = ["SITE_COLUMNS", "SUBJECT_COLUMNS", "build_dataset", "check_roi_counts", "import_files", "list_files",
           "load_table",
           "progress_bar"]
