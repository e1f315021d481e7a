"""Subject-grouped (and site-grouped) stratified splits: never a subject in two splits.

Stratification is done on one label per group (its most frequent value of ``stratify_by``;
missing values form their own stratum). Each stratum gives the held-out part its share of its groups
(largest remainders, so the total is exact), and a stratum of at least two groups keeps one on each side
when the sizes allow: a rare class is never all on one side, and never dropped back to an unstratified
shuffle. :func:`default_stratify_column` names the column build_dataset.py stratifies on when not told.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors_lcm import LcmInputError
from .columns import require_columns


def _group_labels(dataset, group_by: str, stratify_by: str | Sequence[str] | None):
    groups = [str(g) for g in dataset[group_by]]
    unique = sorted(set(groups))
    if not stratify_by:
        return groups, unique, None
    columns = [stratify_by] if isinstance(stratify_by, str) else list(stratify_by)
    require_columns(columns, dataset.column_names, "stratify_by")
    values = list(zip(*(dataset[c] for c in columns)))
    votes: dict[str, Counter] = {g: Counter() for g in unique}
    for g, v in zip(groups, values):
        votes[g][tuple("missing" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x) for x in v)] += 1
    return groups, unique, ["|".join(votes[g].most_common(1)[0][0]) for g in unique]


def _split_groups(unique, labels, size: float, seed: int):
    from sklearn.model_selection import train_test_split

    n_test = int(round(size * len(unique)))
    if n_test < 1 or n_test >= len(unique):
        raise LcmInputError(f"expected a split size leaving both parts non-empty for {len(unique)} groups, got {size}")
    if labels is not None and len(set(labels)) > 1:
        return _stratified_take(unique, labels, n_test, seed)
    keep, held = train_test_split(np.arange(len(unique)), test_size=n_test, random_state=seed)
    return [unique[i] for i in keep], [unique[i] for i in held]


def _stratum_quotas(sizes: dict, n_take: int) -> dict:
    """Groups to take from each stratum: its share of ``n_take`` by largest remainders, then one from every
    stratum of at least two groups that got none (taken from the stratum with the largest quota above one)."""
    total = sum(sizes.values())
    exact = {s: n_take * n / total for s, n in sizes.items()}
    quota = {s: int(np.floor(v)) for s, v in exact.items()}
    for s in sorted(sizes, key=lambda s: (quota[s] - exact[s], -sizes[s], s))[: n_take - sum(quota.values())]:
        quota[s] += 1
    for s in sorted(sizes, key=lambda s: (sizes[s], s)):
        if quota[s] == 0 and sizes[s] >= 2:
            donor = max(sizes, key=lambda d: (quota[d], d))
            if quota[donor] > 1:
                quota[donor] -= 1
                quota[s] += 1
    for s in sizes:  # every stratum of at least two groups keeps one on the other side
        if quota[s] == sizes[s] and sizes[s] >= 2:
            taker = min((d for d in sizes if quota[d] < sizes[d] - 1), key=lambda d: (quota[d] - exact[d], d),
                        default=None)
            if taker is not None:
                quota[s] -= 1
                quota[taker] += 1
    return quota


def _stratified_take(unique, labels, n_take: int, seed: int):
    """(kept groups, held-out groups): ``n_take`` groups held out, each stratum by its quota, shuffled by ``seed``."""
    strata: dict[str, list] = {}
    for group, label in zip(unique, labels):
        strata.setdefault(label, []).append(group)
    quota = _stratum_quotas({s: len(g) for s, g in strata.items()}, n_take)
    rng = np.random.default_rng(seed)
    held = set()
    for stratum in sorted(strata):
        members = strata[stratum]
        held.update(members[i] for i in rng.permutation(len(members))[: quota[stratum]])
    return [g for g in unique if g not in held], [g for g in unique if g in held]


def default_stratify_column(dataset, group_by: str = "subject_id") -> str | None:
    """The first categorical phenotype column of ``dataset``: string (or boolean) values, not an identity or data
    column, with 2 to ``max(2, groups // 2)`` distinct values over the groups (a free-text column is not one);
    None when there is none."""
    from .schema import DATA_COLUMNS, IDENTITY_COLUMNS

    skip = {*IDENTITY_COLUMNS, *DATA_COLUMNS, group_by, "split", "session", "task", "run"}
    n_groups = len(set(dataset[group_by])) if group_by in dataset.column_names else len(dataset)
    for name, feature in dataset.features.items():
        dtype = getattr(feature, "dtype", None)
        if name in skip or name.startswith("window") or dtype not in ("string", "large_string", "bool"):
            continue
        values = {str(v) for v in dataset[name] if v is not None and str(v).strip() != ""}
        if 2 <= len(values) <= max(2, n_groups // 2):
            return name
    return None


def class_counts(dataset, column: str, group_by: str = "subject_id") -> dict[str, int]:
    """``{class: number of groups}`` of ``column`` in ``dataset`` (a group counted under its most frequent
    value; missing values as ``"missing"``), classes sorted."""
    if column not in dataset.column_names or group_by not in dataset.column_names:
        return {}
    _, _, labels = _group_labels(dataset, group_by, column)
    return dict(sorted(Counter(labels).items()))


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
        raise LcmInputError(f"expected group column {group_by!r} in the dataset, got {dataset.column_names}")
    if not 0 < test_size < 1 or not 0 <= validation_size < 1 or test_size + validation_size >= 1:
        raise LcmInputError(f"expected 0 < test_size, 0 <= validation_size, sum < 1, got {test_size}, {validation_size}")
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


def _balanced_group_folds(groups: list[str], n_splits: int, seed: int) -> list[np.ndarray]:
    """Row indices of each fold: groups shuffled with ``seed``, each put in the fold with the fewest rows."""
    unique = sorted(set(groups))
    sizes = Counter(groups)
    order = np.random.default_rng(seed).permutation(len(unique))
    load = [0] * n_splits
    fold_of: dict[str, int] = {}
    for i in order:
        fold = min(range(n_splits), key=lambda f: (load[f], f))
        fold_of[unique[i]] = fold
        load[fold] += sizes[unique[i]]
    members = [[] for _ in range(n_splits)]
    for row, group in enumerate(groups):
        members[fold_of[group]].append(row)
    return [np.asarray(m, dtype=np.int64) for m in members]


def _stratified_group_folds(groups: list[str], unique: list[str], labels: list[str], n_splits: int,
                            seed: int) -> list[np.ndarray]:
    """Row indices of each fold: every stratum's groups shuffled with ``seed`` and dealt to the fold holding the
    fewest of that stratum (then the fewest groups), so each fold's class counts differ by at most one."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[str]] = {}
    for group, label in zip(unique, labels):
        strata.setdefault(label, []).append(group)
    totals = [0] * n_splits
    fold_of: dict[str, int] = {}
    for stratum in sorted(strata, key=lambda s: (-len(strata[s]), s)):
        members, counts, ties = strata[stratum], [0] * n_splits, rng.permutation(n_splits)
        for i in rng.permutation(len(members)):
            fold = min(range(n_splits), key=lambda f: (counts[f], totals[f], ties[f]))
            fold_of[members[i]] = fold
            counts[fold] += 1
            totals[fold] += 1
    rows = [[] for _ in range(n_splits)]
    for row, group in enumerate(groups):
        rows[fold_of[group]].append(row)
    return [np.asarray(r, dtype=np.int64) for r in rows]


def grouped_kfold(dataset, n_splits: int = 5, *, group_by: str = "subject_id",
                  stratify_by: str | None = None, seed: int = 0):
    """``n_splits`` subject-grouped (train, test) folds, shuffled with ``seed``.

    Every group (subject, or site with ``group_by="site"``) is in exactly one test fold and never
    on both sides of a fold. Without ``stratify_by`` the groups are shuffled with ``seed`` and
    dealt to the fold with the fewest rows so far (folds of about equal size); with it, each stratum's
    groups (a group's label: its most frequent value) are shuffled and dealt to the fold holding the fewest
    of them, so every test fold's class counts (in groups) differ by at most one. Different seeds give different
    folds (repeated cross-validation); the same seed the same folds.

    Parameters
    ----------
    dataset : datasets.Dataset
    n_splits : int
        K >= 2, at most the number of groups.
    group_by : str
        Group column.
    stratify_by : str, optional
        Label column to balance across folds.
    seed : int

    Returns
    -------
    list of datasets.DatasetDict
        ``[{"train": ..., "test": ...}] * n_splits``.

    Examples
    --------
    >>> folds = grouped_kfold(ds, 5, seed=1)                 # doctest: +SKIP
    >>> [len(f["test"]) for f in folds]                      # doctest: +SKIP
    [20, 20, 20, 20, 20]
    """
    from datasets import DatasetDict

    require_columns([group_by], dataset.column_names, "group")
    groups = [str(g) for g in dataset[group_by]]
    n_groups = len(set(groups))
    if not isinstance(n_splits, int) or n_splits < 2 or n_splits > n_groups:
        raise LcmInputError(f"expected 2 <= n_splits <= {n_groups} (the number of {group_by} groups), got {n_splits!r}")
    if stratify_by:
        require_columns([stratify_by], dataset.column_names, "stratify_by")
        _, unique, labels = _group_labels(dataset, group_by, stratify_by)
        tests = _stratified_group_folds(groups, unique, labels, n_splits, seed)
    else:
        tests = _balanced_group_folds(groups, n_splits, seed)
    everything = np.arange(len(groups))
    return [DatasetDict({"train": dataset.select(np.setdiff1d(everything, test)), "test": dataset.select(test)})
            for test in tests]


def split_by_column(dataset, column: str = "split", *, group_by: str = "subject_id"):
    """The splits a column names (e.g. a ``split`` column of the phenotype table), kept as given.

    Parameters
    ----------
    dataset : datasets.Dataset
    column : str
        Split name per row (``train``, ``validation``, ``test``...); the column is removed.
    group_by : str
        Checked: no group in two splits.

    Returns
    -------
    datasets.DatasetDict
        One split per distinct value, in the order ``train``, ``validation``, ``test``, then others.

    Raises
    ------
    ValueError
        A missing column (close matches listed), rows without a split name, a group in two splits.
    """
    from datasets import DatasetDict

    require_columns([column, group_by], dataset.column_names)
    names = [None if v is None or str(v).strip() == "" else str(v).strip() for v in dataset[column]]
    missing = [i for i, v in enumerate(names) if v is None]
    if missing:
        raise LcmInputError(f"expected a split name in column {column!r} on every row, got {len(missing)} empty "
                            f"(first row {missing[0]})")
    order = {"train": 0, "validation": 1, "test": 2}
    splits = sorted(set(names), key=lambda n: (order.get(n, 3), n))
    out = DatasetDict({n: dataset.select([i for i, v in enumerate(names) if v == n]).remove_columns(column)
                       for n in splits})
    check_no_leakage(out, group_by)
    return out


def check_no_leakage(splits, column: str = "subject_id") -> None:
    """Raise ``ValueError`` naming a ``column`` value present in two splits."""
    seen: dict[str, str] = {}
    for name, ds in splits.items():
        for value in set(ds[column]):
            if value in seen and seen[value] != name:
                raise LcmInputError(f"expected each {column} in one split, got {value!r} in {seen[value]!r} and {name!r}")
            seen[value] = name


__all__ = ["check_no_leakage", "class_counts", "default_stratify_column", "grouped_kfold", "grouped_split",
           "split_by_column"]
