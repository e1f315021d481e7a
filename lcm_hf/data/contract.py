"""The preprocessing contract of a connectome set: what a model trained on it must record in its processor.

:func:`dataset_contract` reads the atlas, the ordered ROI labels and the repetition time of a connectome set;
:func:`processor_from_dataset` builds the `LcmProcessor` a training recipe saves with the model (and fits the
reference of a group-fitted FC kind once, on the training series).

Where a set says them: columns ``atlas``, ``roi_labels`` (a list per row) and ``repetition_time`` (or ``t_r``),
one value for the whole set, or ``dataset.info.description`` holding a JSON object with those keys.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors_lcm import LcmInputError

CONTRACT_KEYS = ("atlas", "roi_labels", "repetition_time")
_COLUMNS = {"atlas": ("atlas",), "roi_labels": ("roi_labels",), "repetition_time": ("repetition_time", "t_r")}


def _train_split(dataset):
    if not hasattr(dataset, "column_names") or isinstance(dataset.column_names, Mapping):
        if "train" not in dataset:
            raise LcmInputError(f"expected a Dataset or a DatasetDict with a 'train' split, got splits {list(dataset)}")
        return dataset["train"]
    return dataset


def dataset_contract(dataset) -> dict[str, Any]:
    """``{"atlas", "roi_labels", "repetition_time"}`` of a connectome set (None where it does not say).

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict (its ``"train"`` split is read)

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        Rows disagree on the atlas or the ROI labels (one model reads one column order). Several repetition
        times are only a warning (none is recorded).
    """
    dataset = _train_split(dataset)
    description = getattr(getattr(dataset, "info", None), "description", None) or ""
    try:
        described = json.loads(description) if description.strip().startswith("{") else {}
    except ValueError:
        described = {}
    contract: dict[str, Any] = {}
    for key, names in _COLUMNS.items():
        column = next((name for name in names if name in dataset.column_names), None)
        if column is None:
            contract[key] = described.get(key) if isinstance(described, dict) else None
            continue
        values = {json.dumps(v.tolist() if hasattr(v, "tolist") else v) for v in dataset[column]} - {"null"}
        if len(values) > 1 and key == "repetition_time":
            warnings.warn(f"column {column!r}: the dataset has {len(values)} repetition times "
                          f"({sorted(values)[:3]}): none is recorded in the processor", UserWarning, stacklevel=2)
            values = set()
        if len(values) > 1:
            raise LcmInputError(f"expected one {column!r} for the whole dataset (the columns of one model), "
                                f"got {len(values)} values: {sorted(values)[:2]}")
        contract[key] = json.loads(values.pop()) if values else None
    return contract


def add_contract_columns(dataset, *, atlas: str | None = None, roi_labels=None, repetition_time: float | None = None):
    """Record what the files say about the preprocessing as columns of a connectome set (``atlas``,
    ``roi_labels``, ``repetition_time``), so training writes them into the processor's contract.

    Parameters
    ----------
    dataset : datasets.Dataset
    atlas : str, optional
        The atlas name (e.g. ``"aal"``, ``"power_2011"``, or an atlas image's file name).
    roi_labels : sequence of str, optional
        The N ROI labels in column order.
    repetition_time : float, optional
        Seconds per TR.
    """
    if roi_labels is not None:
        column = "timeseries" if "timeseries" in dataset.column_names else "connectivity"
        num_rois = int(np.asarray(dataset[0][column]).shape[-1])
        if len(roi_labels) != num_rois:
            raise LcmInputError(f"expected {num_rois} ROI labels (the data's columns), got {len(roi_labels)}")
    for name, value in (("atlas", atlas), ("roi_labels", None if roi_labels is None else [str(v) for v in roi_labels]),
                        ("repetition_time", None if repetition_time is None else float(repetition_time))):
        if value is None:
            continue
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
        dataset = dataset.add_column(name, [value] * len(dataset))
    return dataset


def processor_from_dataset(dataset, vocabulary=None, *, fit: bool = True, **kwargs):
    """The `LcmProcessor` of a model trained on ``dataset``: N, atlas, ROI labels and TR read from the data.

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict (its ``"train"`` split is read)
        A connectome set (``timeseries`` or ``connectivity`` column).
    vocabulary : BeiVocabulary or list of dict, optional
    fit : bool
        Fit the reference of a group kind (``tangent``) on the set's time series, cut into the processor's
        windows unless the rows are windows already (a ``window_index`` column).
    **kwargs
        Other `LcmProcessor` arguments (``window_size``, ``window_stride``, ``short_series``, ``kind``,
        ``fisher_z``); ``atlas`` / ``roi_labels`` / ``repetition_time`` given here override the dataset's.

    Returns
    -------
    LcmProcessor

    Examples
    --------
    >>> processor = processor_from_dataset(splits, vocab, window_size=90, kind="tangent")
    >>> processor.save_pretrained(output_dir)
    """
    from ..processing_lcm import LcmProcessor

    dataset = _train_split(dataset)
    column = next((c for c in ("timeseries", "connectivity") if c in dataset.column_names), None)
    if column is None:
        raise LcmInputError(f"expected a 'timeseries' or 'connectivity' column, got {dataset.column_names}")
    for key, value in dataset_contract(dataset).items():
        if kwargs.get(key) is None and value is not None:
            kwargs[key] = value
    kwargs.setdefault("num_rois", int(np.asarray(dataset[0][column]).shape[-1]))
    processor = LcmProcessor(vocabulary=vocabulary, **kwargs)
    if fit and not processor.is_fitted and column == "timeseries":
        series = [np.asarray(ts, dtype=np.float32) for ts in dataset.with_format("numpy")[column]]
        processor.fit(series, cut_windows="window_index" not in dataset.column_names)
    return processor


__all__ = ["CONTRACT_KEYS", "add_contract_columns", "dataset_contract", "processor_from_dataset"]
