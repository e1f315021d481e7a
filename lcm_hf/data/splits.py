"""Subject-grouped (and site-grouped) stratified splits: never a subject in two splits.

Stratification is done on one label per group (its most frequent value of ``stratify_by``;
missing values form their own stratum). When a stratum is too small to stratify, the split
falls back to a plain grouped shuffle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def _group_labels(dataset, group_by: str, stratify_by: str | Sequence[str] | None):
    groups = [str(g) for g in dataset[group_by]]
    unique = sorted(set(groups))
    if not stratify_by:
        return groups, unique, None
    columns = [stratify_by] if isinstance(stratify_by, str) else list(stratify_by)
    absent = [c for c in columns if c not in dataset.column_names]
    if absent:
        raise ValueError(f"expected stratify_by columns {absent} in the dataset, got {dataset.column_names}")
    values = list(zip(*(dataset[c] for c in columns)))
    votes: dict[str, Counter] = {g: Counter() for g in unique}
    for g, v in zip(groups, values):
        votes[g][tuple("missing" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x) for x in v)] += 1
    return groups, unique, ["|".join(votes[g].most_common(1)[0][0]) for g in unique]


def _split_groups(unique, labels, size: float, seed: int):
    from sklearn.model_selection import train_test_split

    n_test = int(round(size * len(unique)))
    if n_test < 1 or n_test >= len(unique):
        raise ValueError(f"expected a split size leaving both parts non-empty for {len(unique)} groups, got {size}")
    stratify = labels
    if labels is not None:
        counts = Counter(labels)
        if min(counts.values()) < 2 or len(counts) > n_test or len(counts) > len(unique) - n_test:
            stratify = None
    keep, held = train_test_split(np.arange(len(unique)), test_size=n_test, random_state=seed, stratify=stratify)
    return [unique[i] for i in keep], [unique[i] for i in held]


def grouped_split(dataset, test_size: float = 0.2, validation_size: float = 0.1, *,
                  group_by: str = "subject_id", stratify_by: str | Sequence[str] | None = None, seed: int = 0):
    """Split by groups (subjects by default, or sites), stratified on a label.

    Parameters
    ----------
    dataset : datasets.Dataset
    test_size, validation_size : float
        Fractions of *groups*; ``validation_size=0`` gives no validation split.
    group_by : str
        ``"subject_id"`` (default) or ``"site"`` (held-out sites; subjects stay within sites).
    stratify_by : str or sequence of str, optional
        Label column(s) to balance across splits.
    seed : int

    Returns
    -------
    datasets.DatasetDict
        ``train``, ``validation`` (if ``validation_size > 0``) and ``test``; no group in two splits.
    """
    from datasets import DatasetDict

    if group_by not in dataset.column_names:
        raise ValueError(f"expected group column {group_by!r} in the dataset, got {dataset.column_names}")
    if not 0 < test_size < 1 or not 0 <= validation_size < 1 or test_size + validation_size >= 1:
        raise ValueError(f"expected 0 < test_size, 0 <= validation_size, sum < 1, got {test_size}, {validation_size}")
    groups, unique, labels = _group_labels(dataset, group_by, stratify_by)
    rest, test = _split_groups(unique, labels, test_size, seed)
    parts = {"test": test}
    if validation_size > 0:
        rest_labels = None if labels is None else [labels[unique.index(g)] for g in rest]
        train, validation = _split_groups(rest, rest_labels, validation_size / (1 - test_size), seed + 1)
        parts = {"train": train, "validation": validation, "test": test}
    else:
        parts = {"train": rest, "test": test}
    out = {}
    for name, chosen in parts.items():
        chosen = set(chosen)
        out[name] = dataset.select([i for i, g in enumerate(groups) if g in chosen])
    return DatasetDict(out)


def grouped_kfold(dataset, n_splits: int = 5, *, group_by: str = "subject_id",
                  stratify_by: str | None = None, seed: int = 0):
    """``n_splits`` (train, test) ``DatasetDict`` folds with ``StratifiedGroupKFold`` (or ``GroupKFold``)."""
    from datasets import DatasetDict
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = [str(g) for g in dataset[group_by]]
    if stratify_by:
        y = ["missing" if v is None else str(v) for v in dataset[stratify_by]]
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(np.zeros(len(groups)), y, groups)
    else:
        folds = GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups)
    return [DatasetDict({"train": dataset.select(tr), "test": dataset.select(te)}) for tr, te in folds]


def check_no_leakage(splits, column: str = "subject_id") -> None:
    """Raise ``ValueError`` naming a ``column`` value present in two splits."""
    seen: dict[str, str] = {}
    for name, ds in splits.items():
        for value in set(ds[column]):
            if value in seen and seen[value] != name:
                raise ValueError(f"expected each {column} in one split, got {value!r} in {seen[value]!r} and {name!r}")
            seen[value] = name


__all__ = ["check_no_leakage", "grouped_kfold", "grouped_split"]
