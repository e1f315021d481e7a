"""Merge several connectome datasets into one multitask set with the union vocabulary.

Pseudo-labels: a dataset may declare constant values for BEIs it lacks, e.g. every resting
scan of ``abide_like`` gets ``task="rest"``: ``pseudo_labels={"abide_like": {"task": "rest"}}``.
They fill only missing values (an existing column keeps its values).

:func:`union_vocabulary` builds the union vocabulary straight from the datasets' columns when
no per-dataset vocabularies exist (user data: only the BEI column names are known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..vocabulary_lcm import BeiVocabulary, is_missing
from .schema import connectome_column


def merge_connectome_datasets(
    datasets: Mapping,
    vocabularies: Mapping[str, BeiVocabulary] | BeiVocabulary,
    pseudo_labels: Mapping[str, Mapping[str, object]] | None = None,
    *,
    on_conflict: str = "raise",
):
    """Concatenate connectome datasets into one multitask set.

    Parameters
    ----------
    datasets : mapping name -> datasets.Dataset (a DatasetDict works)
        All with the same data column (``timeseries`` or ``connectivity``) and ROI count.
        A ``dataset`` column is set to the name where absent.
    vocabularies : mapping name -> BeiVocabulary, or one BeiVocabulary for all
        Each dataset's BEIs; their union (``BeiVocabulary.merge``) is the result's vocabulary.
    pseudo_labels : mapping name -> {bei: value}, optional
    standardize : bool
        Standardise the continuous BEIs by the pooled mean and std (``BeiVocabulary.from_dataframe``).
        Constant labels for BEIs a dataset lacks. Each value must be a class of the union vocabulary.
        Entries for datasets not being merged are ignored (so one mapping can serve several merges).
    on_conflict : {"raise", "union"}
        Same BEI name with different classes across datasets (see ``BeiVocabulary.merge``).

    Returns
    -------
    merged : datasets.Dataset
        The union of all columns (absent values None / NaN), rows in the order of ``datasets``.
    vocabulary : BeiVocabulary
        The union vocabulary (BEI order: first dataset's BEIs, then new ones in order).
    """
    from datasets import Features, Value, concatenate_datasets

    if not datasets:
        raise ValueError("expected at least one dataset to merge, got none")
    if on_conflict not in ("raise", "union"):
        raise ValueError(f"expected on_conflict 'raise' or 'union', got {on_conflict!r}")
    names = list(datasets)
    if isinstance(vocabularies, BeiVocabulary):
        vocabulary = vocabularies
    else:
        absent = [n for n in names if n not in vocabularies]
        if absent:
            raise ValueError(f"expected a vocabulary for every dataset, missing {absent}")
        vocabulary = BeiVocabulary().merge(*(vocabularies[n] for n in names), on_conflict=on_conflict)
    pseudo_labels = dict(pseudo_labels or {})
    data_columns = {n: connectome_column(datasets[n]) for n in names}
    if len(set(data_columns.values())) > 1:
        raise ValueError(f"expected the same data column in every dataset, got {data_columns}")
    data_column = data_columns[names[0]]
    shapes = {n: tuple(datasets[n].features[data_column].shape)[-1] for n in names}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"expected the same number of ROIs in every dataset, got {shapes}")

    prepared = []
    for name in names:
        ds = datasets[name]
        if "dataset" not in ds.column_names:
            ds = ds.add_column("dataset", [name] * len(ds))
        for bei, value in pseudo_labels.get(name, {}).items():
            if bei not in vocabulary:
                raise ValueError(f"expected pseudo-label BEIs from the vocabulary {vocabulary.names}, got {bei!r}")
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


def union_vocabulary(
    datasets: Mapping,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    pseudo_labels: Mapping[str, Mapping[str, object]] | None = None,
    standardize: bool = False,
) -> BeiVocabulary:
    """One vocabulary over the BEI columns of several datasets, from their pooled values.

    A column may be absent from some datasets; the declared ``pseudo_labels`` constants count as
    that dataset's values. Categorical columns with no value anywhere are left out; classes are the
    sorted distinct values (``BeiVocabulary.from_dataframe``). Unlike merging per-dataset
    vocabularies, a BEI needs two classes only over all datasets (e.g. ``task`` = rest everywhere
    but in one dataset).

    Parameters
    ----------
    datasets : mapping name -> datasets.Dataset
    categorical, continuous : sequence of str
        BEI columns (BEI order: categorical, then continuous).
    pseudo_labels : mapping name -> {bei: value}, optional
    standardize : bool
        Standardise the continuous BEIs by the pooled mean and std (``BeiVocabulary.from_dataframe``).

    Returns
    -------
    BeiVocabulary
    """
    pseudo_labels = pseudo_labels or {}
    columns: dict[str, list] = {c: [] for c in list(categorical) + list(continuous)}
    for name, dataset in datasets.items():
        for column, values in columns.items():
            found = list(dataset[column]) if column in dataset.column_names else [None] * len(dataset)
            constant = pseudo_labels.get(name, {}).get(column)
            values.extend(found if constant is None else [constant if is_missing(v) else v for v in found])
    present = [c for c in categorical if any(not is_missing(v) for v in columns[c])]
    return BeiVocabulary.from_dataframe(
        columns, categorical=present, continuous=list(continuous), standardize=standardize
    )


__all__ = ["merge_connectome_datasets", "union_vocabulary"]
