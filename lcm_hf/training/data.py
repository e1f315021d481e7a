"""The training data of a run: the user's connectome datasets, as published, cut into labelled subject splits.

- :func:`load_connectome_datasets`: ``--dataset_dirs`` -> ``{name: DatasetDict}``, every split the folder holds
  (``publish_dataset`` / ``build_dataset.py`` parquet folders, or ``save_to_disk`` folders), each dataset under a
  distinct name.
- :func:`subject_splits`: one dataset's train / validation / test rows: the published splits as given, else a
  ``split`` column, else a subject-grouped split (``grouped_split``).
- :func:`build_splits`: all datasets -> ``{"train", "validation", "test"}`` with one row per window (windowed
  only when the data are not windowed yet), ``connectivity`` and ``labels``.
- :func:`training_rows`: a small training split held in memory for the Trainer.
"""

from __future__ import annotations

import json
import os

from ..errors_lcm import LcmInputError

SPLITS = ("train", "validation", "test")


def unique_dataset_names(paths: list[str]) -> list[str]:
    """A distinct name per dataset folder: its base name, or ``parent/base`` where base names collide.

    >>> unique_dataset_names(["a/site1", "b/site1", "c/site2"])
    ['a/site1', 'b/site1', 'site2']
    """
    bases = [os.path.basename(os.path.normpath(path)) for path in paths]
    names = []
    for path, base in zip(paths, bases):
        if bases.count(base) == 1:
            names.append(base)
            continue
        parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
        depth = 2
        while depth <= len(parts):
            candidate = "/".join(parts[-depth:])
            others = [
                "/".join(os.path.normpath(os.path.abspath(p)).split(os.sep)[-depth:])
                for p, b in zip(paths, bases) if b == base and p != path
            ]
            if candidate not in others:
                break
            depth += 1
        names.append(candidate)
    if len(set(names)) != len(names):
        raise LcmInputError(f"expected distinct --dataset_dirs, got the same folder twice in {paths}")
    return names


def load_connectome_datasets(paths: list[str]) -> dict:
    """``{name: DatasetDict}`` from connectome dataset folders, every published split kept.

    Parameters
    ----------
    paths : list of str
        Folders written by ``processing/build_dataset.py`` / ``publish_dataset`` (parquet + dataset card) or
        by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.

    Returns
    -------
    dict
        Distinct dataset names (:func:`unique_dataset_names`) -> ``datasets.DatasetDict``. The rows'
        ``dataset`` column is set to that name.

    Raises
    ------
    ValueError
        A path that is not a folder, or a folder that holds no connectome dataset.
    """
    import datasets as hfds

    from ..data import load_published

    missing = [path for path in paths if not os.path.isdir(path)]
    if missing:
        raise LcmInputError(f"--dataset_dirs: expected existing dataset folders, got no folder at {missing[0]!r}")
    loaded = {}
    for name, path in zip(unique_dataset_names(paths), paths):
        if os.path.isfile(os.path.join(path, "dataset_dict.json")) or os.path.isfile(
            os.path.join(path, "state.json")
        ):
            dataset = hfds.load_from_disk(path)
        elif os.path.isfile(os.path.join(path, "README.md")) or os.path.isdir(os.path.join(path, "data")):
            dataset = load_published(path)
        else:
            raise LcmInputError(
                f"--dataset_dirs: expected a connectome dataset folder (parquet + README.md, or save_to_disk), "
                f"got {path!r} holding {sorted(os.listdir(path))[:5]}"
            )
        if isinstance(dataset, hfds.Dataset):
            dataset = hfds.DatasetDict({"train": dataset})
        unknown = [split for split in dataset if split not in SPLITS]
        if unknown:
            raise LcmInputError(f"--dataset_dirs: {path!r}: expected splits among {list(SPLITS)}, got {list(dataset)}")
        loaded[name] = hfds.DatasetDict(
            {split: _named(part, name) for split, part in dataset.items()}
        )
    return loaded


def _named(dataset, name: str):
    if "dataset" in dataset.column_names:
        dataset = dataset.remove_columns("dataset")
    return dataset.add_column("dataset", [name] * len(dataset))


def subject_splits(dataset_dict, data_args) -> dict:
    """One dataset's ``{"train", "validation", "test"}`` rows.

    The published splits as given when the folder holds more than ``train``; else the rows' ``split`` column
    (values train / validation / test) when present; else a subject-grouped split of ``train``
    (``--validation_fraction``, ``--test_fraction``, ``--split_seed``), stratified on ``--stratify_column`` or by
    default the first categorical target (:func:`lcm_hf.training.stratification.stratify_columns`).
    """
    from ..data import grouped_split, split_by_column

    if set(dataset_dict) != {"train"}:
        return {split: dataset_dict[split] for split in SPLITS if split in dataset_dict}
    train = dataset_dict["train"]
    if "split" in train.column_names:
        named = split_by_column(train, "split", group_by=getattr(data_args, "group_by", "subject_id"))
        unknown = sorted(set(named) - set(SPLITS))
        if unknown:
            raise LcmInputError(f"column 'split': expected values in {list(SPLITS)}, got {unknown}")
        return dict(named)
    for flag in ("validation_fraction", "test_fraction"):
        value = getattr(data_args, flag)
        if not 0 < value < 1:
            raise LcmInputError(
                f"--{flag}: expected a fraction in (0, 1) (a validation split selects readout layers and the "
                f"checkpoint, a test split scores the model), got {value}"
            )
    from .stratification import stratify_columns

    stratify = [column for column in stratify_columns(data_args)[0] if column in train.column_names]
    return dict(
        grouped_split(
            train,
            data_args.test_fraction,
            data_args.validation_fraction,
            group_by=getattr(data_args, "group_by", "subject_id"),
            stratify_by=stratify or None,
            seed=data_args.split_seed,
        )
    )


def _json_mapping_flag(flag: str, text: str | None, shape: str) -> dict | None:
    """The JSON value of a `{key: {key: value}}` command-line flag, or None when not given."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise LcmInputError(f"--{flag}: expected JSON {shape}, got {error}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise LcmInputError(f"--{flag}: expected JSON {shape}, got {text}")
    return value


def declared_pseudo_labels(data_args) -> dict[str, dict[str, str]]:
    """``--pseudo_labels`` as ``{dataset: {bei: class}}`` (empty when not given)."""
    return _json_mapping_flag("pseudo_labels", data_args.pseudo_labels, "{dataset: {bei: class}}") or {}


def class_aliases(data_args) -> dict[str, dict[str, str]] | None:
    """``--class_aliases`` as ``{bei: {spelling: class}}`` (None when not given)."""
    return _json_mapping_flag("class_aliases", getattr(data_args, "class_aliases", None), "{bei: {spelling: class}}")


def bei_columns(data_args) -> tuple[list[str], list[str]]:
    """(categorical, continuous) BEI columns from ``--categorical_columns`` / ``--continuous_columns``."""
    categorical, continuous = list(data_args.categorical_columns or []), list(data_args.continuous_columns or [])
    if not categorical and not continuous:
        raise LcmInputError(
            "expected BEI columns to predict: pass --categorical_columns (e.g. sex diagnosis) and/or "
            "--continuous_columns (e.g. age)"
        )
    return categorical, continuous


def split_parts(datasets: dict, data_args) -> dict[str, dict]:
    """``{split: {dataset name: Dataset}}`` over all datasets (:func:`subject_splits` of each)."""
    absent = [
        column for column in data_args.stratify_column or []
        if not any(column in part.column_names for dd in datasets.values() for part in dd.values())
    ]
    if absent:
        raise LcmInputError(f"--stratify_column: expected columns of the data, got {absent}")
    parts = {split: {} for split in SPLITS}
    for name, dataset_dict in datasets.items():
        for split, part in subject_splits(dataset_dict, data_args).items():
            if len(part):
                parts[split][name] = part
    empty = [split for split in SPLITS if not parts[split]]
    if empty:
        raise LcmInputError(
            f"expected rows in every split, got none in {empty}: give more subjects, other fractions, or "
            "publish the dataset with those splits"
        )
    return parts


def build_splits(parts: dict[str, dict], vocabulary, data_args, pseudo_labels: dict, processor=None) -> dict:
    """``{"train", "validation", "test"}``: one row per window with ``connectivity`` and ``labels``.

    ``parts`` is :func:`split_parts`'s. Windows and FC come from the run's processor (`processor`, default
    :func:`training_processor`: ``--window_size`` / ``--window_stride`` / ``--short_series``, a group kind fitted
    on the training split): time series are cut into its windows (``expand_windows``) unless the rows are
    windows already (a ``window_index`` column) or hold ``connectivity``, and every split's FC is the
    processor's (``add_connectivity``), the FC prediction computes for the same window. Declared pseudo-labels
    are filled in. Rows come as numpy ``connectivity`` / ``labels`` for ``LcmDataCollator``, the other columns
    (``subject_id``, ``dataset``...) as Python values.
    """
    from ..data import add_connectivity, add_labels, expand_windows, merge_connectome_datasets

    if processor is None:
        processor = training_processor(parts, vocabulary, data_args)
    pseudo_labels = {
        name: {bei: value for bei, value in declared.items() if bei in vocabulary}
        for name, declared in pseudo_labels.items()
    }
    splits = {}
    for split, named in parts.items():
        merged, _ = merge_connectome_datasets(
            named, vocabulary, pseudo_labels, class_aliases=class_aliases(data_args)
        )
        if "timeseries" in merged.column_names and "window_index" not in merged.column_names:
            merged = expand_windows(merged, processor)
            if len(merged) == 0:
                raise LcmInputError(
                    f"--window_size: expected scans of at least {processor.window_size} TRs, got none that long in "
                    f"the {split} split (pass a smaller --window_size)"
                )
        splits[split] = model_format(add_labels(add_connectivity(merged, processor), vocabulary))
    return splits


def training_processor(parts: dict[str, dict], vocabulary, data_args, **kwargs):
    """The `LcmProcessor` that carries this run's preprocessing contract (``preprocessor_config.json``) and
    cuts and correlates its windows (:func:`build_splits`).

    Atlas, ROI labels and TR come from the training data (``lcm_hf.data.contract``; datasets must agree); the
    windows are those training uses: ``--window_size`` / ``--window_stride`` / ``--short_series`` for time
    series cut here, the stored windows' length for data published as windows, none for ready connectivity.
    A group FC kind (``kind="tangent"`` in `kwargs`) is fitted once, on the windows of every training dataset.

    Parameters
    ----------
    kwargs
        Other `LcmProcessor` arguments (``kind``, ``fisher_z``).
    """
    import numpy as np

    from ..data.contract import dataset_contract, processor_from_dataset

    train = list(parts["train"].values())
    contracts = [dataset_contract(dataset) for dataset in train]
    for key in ("atlas", "roi_labels"):
        values = {json.dumps(contract[key]) for contract in contracts}
        if len(values) > 1:
            raise LcmInputError(
                f"expected one {key} across --dataset_dirs (one model reads one ROI order), got {sorted(values)[:2]}"
            )
    first = train[0]
    if "connectivity" in first.column_names:
        windows = {}
    elif "window_index" in first.column_names:  # published as windows: the stored windows are the samples
        lengths = first["window_length"] if "window_length" in first.column_names else [
            len(series) for series in first["timeseries"]
        ]
        windows = {"window_size": int(max(lengths)), "short_series": data_args.short_series}
    else:
        windows = {
            "window_size": data_args.window_size,
            "window_stride": data_args.window_stride,
            "short_series": data_args.short_series,
        }
    processor = processor_from_dataset(first, vocabulary, fit=False, **windows, **kwargs)
    if not processor.is_fitted:
        if "timeseries" not in first.column_names:
            raise LcmInputError(f"expected time series to fit the group FC kind {processor.kind!r}, got connectivity")
        pieces = []  # the training windows (valid TRs only), cut by the processor unless stored as windows
        for dataset in train:
            rows = dataset.with_format("numpy")
            lengths = rows["window_length"] if "window_length" in dataset.column_names else None
            for i, ts in enumerate(rows["timeseries"]):
                ts = np.asarray(ts, dtype=np.float32)
                if "window_index" in dataset.column_names:
                    pieces.append(ts if lengths is None else ts[: int(lengths[i])])
                    continue
                windows, sizes = processor.split_windows(ts, training=True)
                pieces.extend(window[: int(size)] for window, size in zip(windows, sizes))
        processor.fit(pieces, cut_windows=False)
    return processor


IN_MEMORY_BYTES = 256 * 2**20
"""Training splits whose ``connectivity`` + ``labels`` take at most this many bytes are batched from memory."""


def training_rows(dataset, max_bytes: int = IN_MEMORY_BYTES):
    """The training rows the Trainer batches: a small split read once into memory, a large one as it is.

    A split of :func:`model_format` whose ``connectivity`` and ``labels`` take at most `max_bytes` comes back as a
    list of ``{"connectivity": ndarray, "labels": ndarray}`` (views of one array each), in the same order: the
    same batches as from the dataset (the sampler draws indices), without decoding Arrow rows at every step (on
    tens of subjects that decoding took a third as long as the optimizer steps). Columns the model does not read
    are dropped, as the Trainer drops them from a dataset (``remove_unused_columns``). Anything else (a larger
    split, rows without ``connectivity`` / ``labels``, not a `datasets.Dataset`) is returned unchanged.
    """
    import datasets as hfds
    import numpy as np

    columns = ["connectivity", "labels"]
    if not isinstance(dataset, hfds.Dataset) or len(dataset) == 0 or not set(columns) <= set(dataset.column_names):
        return dataset
    first = dataset.with_format("numpy", columns=columns)[0]
    if sum(np.asarray(first[c]).nbytes for c in columns) * len(dataset) > max_bytes:
        return dataset
    from ..data.columns import column_array

    arrays = {c: column_array(dataset, c) for c in columns}
    return [{c: arrays[c][i] for c in columns} for i in range(len(dataset))]


def model_format(dataset):
    """``connectivity`` / ``labels`` as numpy for the collator, the other columns as Python values."""
    return dataset.with_format("numpy", columns=["connectivity", "labels"], output_all_columns=True)


__all__ = [
    "SPLITS",
    "bei_columns",
    "build_splits",
    "class_aliases",

    "declared_pseudo_labels",
    "load_connectome_datasets",
    "model_format",
    "split_parts",
    "subject_splits",
    "training_rows",
    "training_processor",
    "unique_dataset_names",
]
