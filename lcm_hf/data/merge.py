"""Merge several connectome datasets into one multitask set with the union vocabulary.

Pseudo-labels: a dataset may declare constant values for BEIs it lacks, e.g. every resting
scan of ``abide_like`` gets ``task="rest"``: ``pseudo_labels={"abide_like": {"task": "rest"}}``.
They fill only missing values (an existing column keeps its values).

:func:`union_vocabulary` builds the union vocabulary straight from the datasets' columns when
no per-dataset vocabularies exist (user data: only the BEI column names are known).

Columns and classes:

- A requested BEI column found in no dataset (nor in the pseudo-labels) is a ``ValueError``
  listing close matches (``Sex`` for ``sex``); a BEI without any label in one dataset is a
  warning naming the BEI and the dataset.
- Class names are matched exactly. ``class_aliases={"sex": {"female": "F", "male": "M"}}``
  merges spellings (applied to the data, the pseudo-labels and the vocabulary alike); a warning
  names the classes of one BEI that differ only by case or spelling (``F`` / ``female``).
- Dataset names: two inputs whose ``dataset`` values collide raise ``ValueError`` (they would be
  one dataset for stratification and reports); ``rename=True`` writes each input's mapping key
  into its ``dataset`` column (name the keys with ``lcm_hf.training.data.unique_dataset_names``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from ..errors_lcm import LcmInputError
from ..vocabulary_lcm import BeiVocabulary, class_name, is_missing
from .columns import (
    alias_value,
    apply_class_aliases,
    check_class_aliases,
    missing_column_message,
    similar_classes,
)
from .identity import add_scan_ids
from .schema import connectome_column
from .value_checks import check_categorical_classes


def _check_dataset_names(datasets: Mapping, rename: bool) -> None:
    owners: dict[str, str] = {}
    for key, ds in datasets.items():
        values = {key} if rename or "dataset" not in ds.column_names else {str(v) for v in set(ds["dataset"])}
        for value in values:
            if value in owners and owners[value] != key:
                raise LcmInputError(
                    f"expected distinct dataset names, got {value!r} in both inputs {owners[value]!r} and {key!r}; "
                    "name the inputs apart (unique_dataset_names(paths)) and pass rename=True to write each "
                    "input's name into its 'dataset' column")
            owners[value] = key


def merge_connectome_datasets(
    datasets: Mapping,
    vocabularies: Mapping[str, BeiVocabulary] | BeiVocabulary,
    pseudo_labels: Mapping[str, Mapping[str, object]] | None = None,
    *,
    on_conflict: str = "raise",
    class_aliases: Mapping[str, Mapping[str, str]] | None = None,
    rename: bool = False,
):
    """Concatenate connectome datasets into one multitask set.

    Parameters
    ----------
    datasets : mapping name -> datasets.Dataset (a DatasetDict works)
        All with the same data column (``timeseries`` or ``connectivity``) and ROI count.
        A ``dataset`` column is set to the name where absent, a ``scan_id`` column added where
        absent (:func:`~lcm_hf.data.add_scan_ids`).
    vocabularies : mapping name -> BeiVocabulary, or one BeiVocabulary for all
        Each dataset's BEIs; their union (``BeiVocabulary.merge``) is the result's vocabulary.
    pseudo_labels : mapping name -> {bei: value}, optional
        Constant labels for BEIs a dataset lacks. Each value must be a class of the union vocabulary.
        Entries for datasets not being merged are ignored (so one mapping can serve several merges).
    on_conflict : {"raise", "union"}
        Same BEI name with different classes across datasets (see ``BeiVocabulary.merge``).
    class_aliases : mapping bei -> {spelling: class}, optional
        Spellings replaced in the data and pseudo-labels (as given to :func:`union_vocabulary`).
    rename : bool
        Write each input's name (its key) into its ``dataset`` column. Without it, inputs whose
        ``dataset`` values collide raise ``ValueError``.

    Returns
    -------
    merged : datasets.Dataset
        The union of all columns (absent values None / NaN), rows in the order of ``datasets``.
    vocabulary : BeiVocabulary
        The union vocabulary (BEI order: first dataset's BEIs, then new ones in order).

    Examples
    --------
    >>> merged, vocab = merge_connectome_datasets(                     # doctest: +SKIP
    ...     {"site_a": a, "site_b": b}, vocab, class_aliases={"sex": {"female": "F"}}, rename=True)
    """
    from datasets import Features, Value, concatenate_datasets

    if not datasets:
        raise LcmInputError("expected at least one dataset to merge, got none")
    if on_conflict not in ("raise", "union"):
        raise LcmInputError(f"expected on_conflict 'raise' or 'union', got {on_conflict!r}")
    aliases = check_class_aliases(class_aliases)
    names = list(datasets)
    _check_dataset_names(datasets, rename)
    if isinstance(vocabularies, BeiVocabulary):
        vocabulary = vocabularies
    else:
        absent = [n for n in names if n not in vocabularies]
        if absent:
            raise LcmInputError(f"expected a vocabulary for every dataset, missing {absent}")
        vocabulary = BeiVocabulary().merge(*(vocabularies[n] for n in names), on_conflict=on_conflict)
    pseudo_labels = dict(pseudo_labels or {})
    data_columns = {n: connectome_column(datasets[n]) for n in names}
    if len(set(data_columns.values())) > 1:
        raise LcmInputError(f"expected the same data column in every dataset, got {data_columns}")
    data_column = data_columns[names[0]]
    shapes = {n: tuple(datasets[n].features[data_column].shape)[-1] for n in names}
    if len(set(shapes.values())) > 1:
        raise LcmInputError(f"expected the same number of ROIs in every dataset, got {shapes}")

    prepared = []
    for name in names:
        ds = datasets[name]
        if rename and "dataset" in ds.column_names:
            ds = ds.remove_columns("dataset")
        if "dataset" not in ds.column_names:
            ds = ds.add_column("dataset", [name] * len(ds), feature=Value("string"))
        ds = add_scan_ids(apply_class_aliases(ds, aliases))
        for bei, value in pseudo_labels.get(name, {}).items():
            if bei not in vocabulary:
                raise LcmInputError(f"expected pseudo-label BEIs from the vocabulary {vocabulary.names}, got {bei!r}")
            value = alias_value(value, aliases.get(bei, {}))
            vocabulary.encode_value(bei, value)  # raises with the known classes if invalid
            if bei in ds.column_names:
                ds = ds.map(lambda row, b=bei, v=value: {b: v if is_missing(row[b]) else row[b]},
                            desc=f"pseudo-labels {name}")
            else:
                ds = ds.add_column(bei, [value] * len(ds))
        prepared.append(ds)

    features = {}
    for ds in prepared:
        for column, feature in ds.features.items():
            features.setdefault(column, feature)
    aligned = []
    for ds in prepared:
        for column, feature in features.items():
            if column not in ds.column_names:
                fill = float("nan") if isinstance(feature, Value) and feature.dtype.startswith("float") else None
                ds = ds.add_column(column, [fill] * len(ds))
        ds = ds.select_columns(list(features))
        if ds.features != Features(features):
            ds = ds.cast(Features(features))
        aligned.append(ds)
    return concatenate_datasets(aligned), vocabulary


def _warn_unlabelled(empty: dict[str, list[str]]) -> None:
    if empty:
        listed = "; ".join(f"{bei!r} in {', '.join(repr(n) for n in names)}" for bei, names in empty.items())
        warnings.warn(f"BEIs without any label in a dataset (they train nothing there): {listed}", RuntimeWarning,
                      stacklevel=3)


def _warn_similar(bei: str, by_dataset: dict[str, set[str]]) -> None:
    pooled = set().union(*by_dataset.values()) if by_dataset else set()
    pairs = similar_classes(pooled)
    if not pairs:
        return

    def where(c: str) -> str:
        return ", ".join(n for n, classes in by_dataset.items() if c in classes)

    listed = ", ".join(f"{a!r} ({where(a)}) ~ {b!r} ({where(b)})" for a, b in pairs)
    example = {b: a for a, b in pairs[:2]}
    warnings.warn(f"BEI {bei!r}: classes that differ only by case or spelling: {listed}. Classes are matched "
                  f"exactly; merge spellings with class_aliases={{{bei!r}: {example}}}", RuntimeWarning, stacklevel=3)


def union_vocabulary(
    datasets: Mapping,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    pseudo_labels: Mapping[str, Mapping[str, object]] | None = None,
    standardize: bool = False,
    *,
    class_aliases: Mapping[str, Mapping[str, str]] | None = None,
) -> BeiVocabulary:
    """One vocabulary over the BEI columns of several datasets, from their pooled values.

    A column may be absent from some datasets (a warning names the datasets without labels);
    the declared ``pseudo_labels`` constants count as that dataset's values. A column absent from
    every dataset is an error. Categorical columns with no value anywhere are left out; classes
    are the sorted distinct values (``BeiVocabulary.from_dataframe``), after ``class_aliases``.
    Unlike merging per-dataset vocabularies, a BEI needs two classes only over all datasets
    (e.g. ``task`` = rest everywhere but in one dataset).

    Parameters
    ----------
    datasets : mapping name -> datasets.Dataset
    categorical, continuous : sequence of str
        BEI columns (BEI order: categorical, then continuous).
    pseudo_labels : mapping name -> {bei: value}, optional
    standardize : bool
        Standardise the continuous BEIs by the pooled mean and std (``BeiVocabulary.from_dataframe``).
    class_aliases : mapping bei -> {spelling: class}, optional
        E.g. ``{"sex": {"female": "F", "male": "M"}}``; pass the same map to
        :func:`merge_connectome_datasets` so the data is renamed too.

    Returns
    -------
    BeiVocabulary

    Raises
    ------
    ValueError
        A requested column in no dataset and no pseudo-label (close matches listed).

    Examples
    --------
    >>> vocab = union_vocabulary({"a": a, "b": b}, categorical=["sex"], continuous=["age"],   # doctest: +SKIP
    ...                          class_aliases={"sex": {"female": "F", "male": "M"}})
    """
    pseudo_labels = pseudo_labels or {}
    aliases = check_class_aliases(class_aliases)
    requested = list(categorical) + list(continuous)
    all_columns = sorted({c for ds in datasets.values() for c in ds.column_names})
    for column in requested:
        declared = any(column in pseudo_labels.get(name, {}) for name in datasets)
        if column not in all_columns and not declared:
            raise LcmInputError(missing_column_message("BEI", column, all_columns, "any dataset"))
    columns: dict[str, list] = {c: [] for c in requested}
    subjects: list[str] = []  # aligned with the pooled values: integer "classes" are counted per subject
    empty: dict[str, list[str]] = {}
    classes: dict[str, dict[str, set[str]]] = {c: {} for c in categorical}
    for name, dataset in datasets.items():
        ids = dataset["subject_id"] if "subject_id" in dataset.column_names else range(len(dataset))
        subjects.extend(f"{name}/{s}" for s in ids)
        for column, values in columns.items():
            found = list(dataset[column]) if column in dataset.column_names else [None] * len(dataset)
            constant = pseudo_labels.get(name, {}).get(column)
            found = found if constant is None else [constant if is_missing(v) else v for v in found]
            found = [alias_value(v, aliases.get(column, {})) for v in found]
            if all(is_missing(v) for v in found):
                empty.setdefault(column, []).append(str(name))
            elif column in classes:
                classes[column][str(name)] = {class_name(v) for v in found if not is_missing(v)}
            values.extend(found)
    _warn_unlabelled(empty)
    for column in categorical:  # an age given as categorical: one class per subject
        check_categorical_classes(column, columns[column], subjects)
    for column, by_dataset in classes.items():
        _warn_similar(column, by_dataset)
    present = [c for c in categorical if any(not is_missing(v) for v in columns[c])]
    return BeiVocabulary.from_dataframe(
        columns, categorical=present, continuous=list(continuous), standardize=standardize
    )


__all__ = ["merge_connectome_datasets", "union_vocabulary"]
