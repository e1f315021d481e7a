"""Who is in a file: subject and scan identity, and exact matching of files to phenotype rows.

Identity of a file (:func:`file_identity`):

- ``subject``: the BIDS ``sub-`` label (``sub-13_task-rest_run-1_bold.tsv`` -> ``13``), else the
  ``subject`` group of ``subject_pattern`` (a regex searched in the file stem), else the stem.
- ``scan_id``: the scan entities of the name in BIDS order (``ses-1_task-rest_run-1``), else the
  ``scan`` group of ``subject_pattern``, else the file stem (``sub-01_bold``).

Matching to a phenotype table (:class:`PhenotypeMatcher`) is exact: ids are compared after one
normalisation only (surrounding spaces, a ``sub-`` prefix and the leading zeros of all-digit ids
are ignored: ``sub-007`` = ``007`` = ``7``; integral floats such as ``13.0`` read as ``13``),
never by substring or prefix: ``sub-13_...`` does not match subject ``1``. A file without a
``sub-`` entity matches a row whose id equals its whole stem or its first ``_``-separated token
(``A01_roi.mat`` -> ``A01``).

A table may be per subject (one row per subject, applied to all of its scans) or per scan (a
``scan_column`` naming the scan: entities ``ses-1_task-rest_run-1`` / ``run-1``, a bare value
in a column named after an entity (``run`` = ``2`` is ``run-2``), the file stem or name). A row
names a file when all of its entities equal the file's (values compared exactly, leading zeros
aside: ``run-01`` = ``run-1``; a row naming fewer entities, e.g. ``ses-1``, applies to every
scan of that session); the most specific row wins, and two equally specific rows are a
duplicate. In a per-scan table a row with an empty scan cell applies to the subject's scans
that no row names.

Problems are gathered into one :class:`MatchReport`: files without a row, rows without a file,
and duplicate ids. Duplicate ids (two rows for one subject, or one scan) are never resolved by
taking a row: the files they would match count as unmatched. ``unmatched="warn"`` skips
unmatched files and warns once with counts and the first names; ``"error"`` raises one
``ValueError`` with the same summary; ``"keep"`` keeps unmatched files with missing phenotypes
(and warns).

Example
-------
>>> import pandas as pd
>>> table = pd.DataFrame({"participant_id": ["sub-01", "sub-13"], "age": [30, 40]})
>>> matcher = PhenotypeMatcher(table, "participant_id")
>>> matcher.match(file_identity("sub-13_task-rest_run-1_bold.tsv"))
1
>>> matcher.match(file_identity("sub-1_task-rest_bold.tsv"))            # leading zeros ignored: sub-01
0
>>> matcher.match(file_identity("sub-131_task-rest_bold.tsv")) is None  # never a prefix or substring
True
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from .readers import SCAN_ENTITIES, parse_bids_name

UNMATCHED_POLICIES = ("warn", "error", "keep")
SHOWN = 5  # names shown per problem in a summary


def check_unmatched(unmatched: str) -> None:
    """Raise ``ValueError`` unless ``unmatched`` is one of :data:`UNMATCHED_POLICIES`."""
    if unmatched not in UNMATCHED_POLICIES:
        raise LcmInputError(f"expected unmatched 'warn', 'error' or 'keep', got {unmatched!r}")


def clean_value(value):
    """A pandas / numpy cell as plain Python; integral floats become ints (``13.0`` -> ``13``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        return int(value)
    return value


def normalize_id(value) -> str | None:
    """The matching key of an id: stripped, without a ``sub-`` prefix, all-digit ids without leading zeros.

    ``None`` for missing cells (None, NaN, empty string). ``normalize_id("sub-007") == normalize_id(7) == "7"``.
    """
    value = clean_value(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text.startswith("sub-"):
        text = text[4:]
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return text or None


def _scan_key(entities: dict) -> tuple:
    return tuple((k, normalize_id(entities[k])) for k in SCAN_ENTITIES if k in entities)


@dataclass
class FileIdentity:
    """Identity of one data file (see the module docstring).

    Attributes
    ----------
    path : pathlib.Path
    subject : str
        The subject as the file names it (``sub-`` label, pattern group or stem).
    scan_id : str
    entities : dict
        BIDS-like entities of the name (``sub``, ``ses``, ``task``, ``run``...).
    subject_keys : list of str
        Normalised subject candidates tried in order against the table.
    scan_keys : list
        Scan candidates (entity tuple, scan id, stem, name) tried against a scan column.
    """

    path: Path
    subject: str
    scan_id: str
    entities: dict
    subject_keys: list = field(default_factory=list)
    scan_keys: list = field(default_factory=list)


def file_stem(path: str | os.PathLike) -> str:
    """The file name without its suffixes (``sub-01_bold.nii.gz`` -> ``sub-01_bold``)."""
    return Path(path).name.split(".")[0]


def file_identity(path: str | os.PathLike, subject_pattern: str | None = None) -> FileIdentity:
    """Subject and scan of a file from its name.

    Parameters
    ----------
    path : path-like
    subject_pattern : str, optional
        Regex searched in the file stem; its group ``subject`` (or its first group) is the subject,
        an optional group ``scan`` the scan id. E.g. ``r"ROISignals_(?P<subject>\\d+)"``.

    Returns
    -------
    FileIdentity

    Examples
    --------
    >>> ident = file_identity("sub-01_ses-2_task-rest_run-1_bold.tsv")
    >>> ident.subject, ident.scan_id
    ('01', 'ses-2_task-rest_run-1')
    >>> file_identity("A01_roi.mat").subject_keys
    ['A01_roi', 'A01']
    """
    path = Path(path)
    stem = file_stem(path)
    entities = parse_bids_name(path)
    scan_entities = {k: v for k, v in entities.items() if k != "sub"}
    scan_id = "_".join(f"{k}-{scan_entities[k]}" for k in SCAN_ENTITIES if k in scan_entities)
    subject, keys = None, []
    if subject_pattern is not None:
        found = re.search(subject_pattern, stem)
        if found is not None:
            groups = found.groupdict()
            subject = groups.get("subject") or (found.group(1) if found.re.groups else found.group(0))
            scan_id = groups.get("scan") or scan_id
            keys = [subject]
    elif "sub" in entities:
        subject = entities["sub"]
        keys = [subject]
    else:
        first = re.split(r"[_.]", stem)[0]
        keys = [stem] + ([first] if first and first != stem else [])
    scan_id = scan_id or stem
    scan_keys = ([("entities", _scan_key(scan_entities))] if scan_entities else []) + [
        ("name", scan_id), ("name", stem), ("name", path.name)]
    return FileIdentity(path=path, subject=subject or stem, scan_id=scan_id, entities=entities,
                        subject_keys=[k for k in (normalize_id(x) for x in keys) if k is not None], scan_keys=scan_keys)


ENTITY_COLUMN_NAMES = {"ses": "ses", "session": "ses", "task": "task", "acq": "acq", "run": "run",
                       "echo": "echo", "dir": "dir", "rec": "rec", "ce": "ce"}
"""Scan columns whose bare values (``2``) are that entity's value (``run-2``)."""


def _scan_value_key(value, column: str | None = None) -> tuple | None:
    value = clean_value(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    text = str(value).strip()
    entities = {k: v for k, v in parse_bids_name(text).items() if k != "sub"}
    if entities:
        return ("entities", _scan_key(entities))
    entity = ENTITY_COLUMN_NAMES.get(str(column).lower()) if column is not None else None
    if entity is not None and text.isalnum():
        return ("entities", _scan_key({entity: text}))
    return ("name", text)


def _scan_matches(row_key: tuple, file_keys: list) -> int:
    """How specifically a row's scan key matches a file: 0 none; else the number of entities named
    (all equal to the file's), or a large number for an exact name (scan id, stem or file name)."""
    kind, value = row_key
    if kind == "name":
        return 1000 if row_key in file_keys else 0
    file_entities = dict(next((v for k, v in file_keys if k == "entities"), ()))
    return len(value) if all(file_entities.get(k) == v for k, v in value) else 0


def _show(names: Sequence[str]) -> str:
    shown = ", ".join(str(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


@dataclass
class MatchReport:
    """Everything that did not match, reported once (:meth:`summary`, :meth:`resolve`)."""

    source: str
    n_files: int = 0
    n_rows: int = 0
    unmatched_files: list = field(default_factory=list)
    ambiguous_files: list = field(default_factory=list)
    unmatched_rows: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    hint: str = ""

    @property
    def ok(self) -> bool:
        return not (self.unmatched_files or self.ambiguous_files or self.unmatched_rows or self.duplicates)

    def summary(self, unmatched: str = "warn") -> str:
        """One line per problem, with counts and the first few names."""
        action = {"warn": "skipped", "error": "", "keep": "kept with missing phenotypes"}[unmatched]
        action = f" ({action})" if action else ""
        problems = [(self.unmatched_files, "file", f" without a phenotype row{action}"),
                    (self.duplicates, "duplicate id", " in the table (no row is chosen)"),
                    (self.ambiguous_files, "file", f" matching a duplicate id{action}"),
                    (self.unmatched_rows, "phenotype row", " without a file")]
        parts = [f"{len(names)} {noun}{'s' * (len(names) > 1)}{what}: {_show(names)}"
                 for names, noun, what in problems if names]
        head = f"matching {self.n_files} files of {self.source} to {self.n_rows} phenotype rows: "
        return head + "; ".join(parts) + (f". {self.hint}" if self.hint else "")

    def resolve(self, unmatched: str = "warn", stacklevel: int = 3) -> None:
        """Nothing when all matched; else one ``RuntimeWarning`` (warn/keep) or ``ValueError`` (error)."""
        check_unmatched(unmatched)
        if self.ok:
            return
        if unmatched == "error":
            raise LcmInputError("expected a phenotype row for every file, a file for every row and unique ids, got: "
                                + self.summary("error"))
        verb = "skipping" if unmatched == "warn" else "keeping"
        lost = len(self.unmatched_files) + len(self.ambiguous_files)
        prefix = f"{verb} {lost} unmatched file{'s' * (lost != 1)}; " if lost else ""
        warnings.warn(prefix + self.summary(unmatched), RuntimeWarning, stacklevel=stacklevel)


class PhenotypeMatcher:
    """Exact matching of files to the rows of a per-subject or per-scan phenotype table.

    Parameters
    ----------
    table : pandas.DataFrame
    subject_column : str
        Column holding the subject ids.
    scan_column : str, optional
        Column naming the scan of a per-scan table (empty cells: the row applies to the subject).
    """

    def __init__(self, table, subject_column: str, scan_column: str | None = None):
        self.table = table
        self.subject_column = subject_column
        self.scan_column = scan_column
        self.rows: dict[tuple, list[int]] = {}
        self.scans: dict[str, list[tuple]] = {}  # subject -> scan keys of its per-scan rows
        for i in range(len(table)):
            subject = normalize_id(table[subject_column].iloc[i])
            if subject is None:
                continue
            scan = _scan_value_key(table[scan_column].iloc[i], scan_column) if scan_column else None
            if (subject, scan) not in self.rows and scan is not None:
                self.scans.setdefault(subject, []).append(scan)
            self.rows.setdefault((subject, scan), []).append(i)
        self.used: set[int] = set()
        self.ambiguous = False

    def _name(self, key: tuple) -> str:
        rows = self.rows[key]
        subject = clean_value(self.table[self.subject_column].iloc[rows[0]])
        name = repr(str(subject))
        if key[1] is not None:
            name += f" scan {str(clean_value(self.table[self.scan_column].iloc[rows[0]]))!r}"
        return f"{name} (rows {', '.join(str(r) for r in rows)})" if len(rows) > 1 else name

    def duplicates(self) -> list[str]:
        """Names of the ids with several rows."""
        return [self._name(key) for key, rows in self.rows.items() if len(rows) > 1]

    def _scan_row_key(self, subject: str, ident: FileIdentity) -> tuple | None:
        """The most specific per-scan key of ``subject`` matching the file (several equally specific: ambiguous)."""
        scored = [(_scan_matches(scan, ident.scan_keys), scan) for scan in self.scans.get(subject, [])]
        scored = [(score, scan) for score, scan in scored if score > 0]
        if not scored:
            return None
        best = max(score for score, _ in scored)
        top = [scan for score, scan in scored if score == best]
        if len(top) > 1:
            self.ambiguous = True
            for scan in top:
                self.used.update(self.rows[(subject, scan)])
            return None
        return (subject, top[0])

    def match(self, ident: FileIdentity) -> int | None:
        """Row index of the file's phenotypes, or None (no row, or a duplicate id: then :attr:`ambiguous`).

        Per-scan rows first (the row whose scan names the file most specifically: its exact scan id, stem
        or name, else the most entities, all equal to the file's), then the subject's row without a scan.
        """
        self.ambiguous = False
        for subject in ident.subject_keys:
            key = self._scan_row_key(subject, ident) if self.scan_column else None
            if self.ambiguous:
                return None
            if key is None and (subject, None) in self.rows:
                key = (subject, None)
            if key is None:
                continue
            rows = self.rows[key]
            self.used.update(rows)
            if len(rows) > 1:
                self.ambiguous = True
                return None
            return rows[0]
        return None

    def unmatched_rows(self) -> list[str]:
        """Names of the rows no file matched (duplicates left out: they are reported as such)."""
        return [self._name(key) for key, rows in self.rows.items() if len(rows) == 1 and rows[0] not in self.used]


__all__ = ["UNMATCHED_POLICIES", "FileIdentity", "MatchReport", "PhenotypeMatcher", "check_unmatched",
           "clean_value", "file_identity", "file_stem", "normalize_id"]
