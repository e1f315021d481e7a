"""Checks of a connectome set's phenotype values at build time, reported before anything trains on them.

- :func:`check_categorical_classes`: a categorical column of integers with about one value per subject (an age given
  as ``--categorical_columns age``) is refused with the ``--continuous_columns`` hint.
- :func:`class_variant_groups` / :func:`warn_class_variants`: spellings of one class (``ADHD``, ``adhd``, ``Adhd``;
  ``control`` / ``controls``) found in one column are reported with the ready ``--class_aliases`` flag that merges
  them (each group onto its most frequent spelling); training would otherwise learn them as separate classes.

Examples
--------
>>> class_variant_groups(["ADHD", "adhd", "ADHD", "control", "Adhd"])
[['ADHD', 'Adhd', 'adhd']]
>>> class_aliases_flag({"diagnosis": [["ADHD", "Adhd", "adhd"]]})
'--class_aliases \\'{"diagnosis": {"Adhd": "ADHD", "adhd": "ADHD"}}\\''
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..errors_lcm import LcmInputError
from .columns import similar_classes

IDENTITY_COLUMNS = ("subject_id", "scan_id", "dataset", "site", "file_id", "atlas", "roi_labels", "split",
                    "session", "run")
"""Columns that are not phenotypes: their values are never class spellings."""


def class_variant_groups(values: Iterable) -> list[list[str]]:
    """Groups of distinct values that look like spellings of one class (:func:`~lcm_hf.data.columns.similar_classes`),
    each sorted with its most frequent spelling first (ties: alphabetical)."""
    counts = Counter(str(v) for v in values if v is not None and str(v).strip() and str(v).lower() != "nan")
    parent = {name: name for name in counts}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for a, b in similar_classes(counts):
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for name in counts:
        groups.setdefault(root(name), []).append(name)
    ordered = [sorted(group, key=lambda name: (-counts[name], name)) for group in groups.values() if len(group) > 1]
    return sorted(ordered, key=lambda group: group[0])


def class_aliases_flag(groups: Mapping[str, Sequence[Sequence[str]]]) -> str:
    """The ``--class_aliases '{bei: {spelling: class}}'`` flag merging every group onto its first spelling."""
    aliases = {column: {name: group[0] for group in column_groups for name in sorted(group[1:])}
               for column, column_groups in groups.items() if column_groups}
    return f"--class_aliases '{json.dumps(aliases)}'"


def warn_class_variants(dataset, columns: Sequence[str] | None = None) -> dict[str, list[list[str]]]:
    """Warn (``RuntimeWarning``, one line) about class spellings in the text phenotype columns of ``dataset``.

    Parameters
    ----------
    dataset : datasets.Dataset
    columns : sequence of str, optional
        Columns to check (default: every string column but :data:`IDENTITY_COLUMNS`).

    Returns
    -------
    dict
        ``{column: groups}`` of the columns with spellings (empty when there are none).
    """
    from datasets import Value

    if columns is None:
        columns = [name for name, feature in dataset.features.items()
                   if isinstance(feature, Value) and feature.dtype in ("string", "large_string")
                   and name not in IDENTITY_COLUMNS]
    found = {column: groups for column in columns if (groups := class_variant_groups(dataset[column]))}
    if found:
        listed = "; ".join(f"{column}: {', '.join(' ~ '.join(repr(v) for v in group) for group in groups)}"
                           for column, groups in found.items())
        warnings.warn(f"classes that differ only by case or spelling ({listed}) are published as they are and would "
                      f"train as separate classes; merge them when training with {class_aliases_flag(found)} (or fix "
                      "the table)", RuntimeWarning, stacklevel=2)
    return found


MIN_NUMBER_CLASSES = 6
"""A categorical column of integers with at least this many distinct values ..."""
NUMBER_CLASSES_PER_SUBJECT = 0.5
"""... and at least this many distinct values per labelled subject is a number (age), not a class."""


def _integer(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value)) and float(value).is_integer()
    return isinstance(value, str) and value.strip().lstrip("+-").isdigit()


def check_categorical_classes(column: str, values: Sequence, subjects: Sequence | None = None) -> None:
    """Refuse a categorical BEI whose classes are integers with about one value per subject (an age, a score): it
    would train one class per subject. ``values`` and ``subjects`` are aligned (one per row; missing values skipped).

    Raises
    ------
    ValueError
        Naming the column, the number of distinct values and subjects, and ``--continuous_columns``.
    """
    from ..vocabulary_lcm import is_missing

    present = [(v, s) for v, s in zip(values, subjects if subjects is not None else range(len(values)))
               if not is_missing(v)]
    if not present or not all(_integer(v) for v, _ in present):
        return
    distinct = len({int(float(v)) for v, _ in present})
    labelled = len({s for _, s in present})
    if distinct >= MIN_NUMBER_CLASSES and distinct >= NUMBER_CLASSES_PER_SUBJECT * labelled:
        raise LcmInputError(
            f"categorical BEI {column!r} (--categorical_columns): expected a few classes, got {distinct} distinct "
            f"integer values over {labelled} labelled subjects (about one per subject: a number, not a class); pass it "
            f"as continuous: --continuous_columns {column}")


__all__ = ["IDENTITY_COLUMNS", "MIN_NUMBER_CLASSES", "NUMBER_CLASSES_PER_SUBJECT", "check_categorical_classes",
           "class_aliases_flag", "class_variant_groups", "warn_class_variants"]
