"""Dataset transforms: window expansion, FC precomputation, label columns.

For speed, compute FC once with :func:`add_connectivity` (a batched ``Dataset.map``) rather
than in the collator at every epoch.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..connectivity import compute_connectivity
from ..connectivity_windows import sliding_windows
from .schema import connectome_column, num_rois_of


def expand_windows(dataset, window_size: int = 500, stride: int | None = None, *, drop_last: bool = False,
                   zero_pad: bool = False, min_length: int = 3, short_series: str | None = None):
    """One row per time-series window; every other column (``subject_id``, ``scan_id``...) is copied.

    Each window's FC is later computed over its valid TRs only (:func:`add_connectivity` and the
    collator read ``window_length``), never over zero padding.

    Parameters
    ----------
    dataset : datasets.Dataset
        With a ``timeseries`` column (T x N).
    window_size, stride : int
        Window length and step in TRs (paper: 500, non-overlapping).
    drop_last : bool
        Drop a last window shorter than ``window_size`` (of a series with at least one full window).
    zero_pad : bool
        Store a short window zero-padded to ``window_size`` (the paper's layout) instead of trimmed
        to its valid TRs. Either way ``window_length`` holds the valid TRs and the FC ignores the padding.
    min_length : int
        Windows with fewer valid points are dropped.
    short_series : {"pad", "drop"}, optional
        Series shorter than ``window_size``: ``"pad"`` keeps one window of their valid TRs, ``"drop"``
        removes them. Default: ``"drop"`` with ``drop_last``, else ``"pad"``. Either way one
        ``RuntimeWarning`` says how many series were short, which (``subject_id/scan_id``), and the policy.

    Returns
    -------
    datasets.Dataset
        Columns of ``dataset`` plus ``window_index``, ``num_windows`` and ``window_length`` (int32).

    Examples
    --------
    >>> windows = expand_windows(ds, 500, short_series="drop")       # doctest: +SKIP
    >>> windows = add_connectivity(windows)                          # FC over each window's valid TRs  # doctest: +SKIP
    """
    from datasets import Value

    if "timeseries" not in dataset.column_names:
        raise ValueError(f"expected a 'timeseries' column to cut into windows, got {dataset.column_names}")
    if short_series not in (None, "pad", "drop"):
        raise ValueError(f"expected short_series 'pad' or 'drop', got {short_series!r}")
    policy = short_series or ("drop" if drop_last else "pad")
    short: list[tuple[int, int]] = []  # (row, TRs) of series shorter than one window

    def cut(batch, indices):
        out = {k: [] for k in batch}
        out["window_index"], out["num_windows"], out["window_length"] = [], [], []
        for i, ts in enumerate(batch["timeseries"]):
            ts = np.array(ts, dtype=np.float32)  # a writable copy for torch
            if ts.shape[0] < window_size:
                short.append((indices[i], ts.shape[0]))
            windows, lengths = sliding_windows(torch.as_tensor(ts), window_size, stride, drop_last=drop_last,
                                               min_length=min_length, short_series=policy)
            for w, (window, length) in enumerate(zip(windows, lengths.tolist())):
                for key in batch:
                    out[key].append(batch[key][i] if key != "timeseries" else
                                    (window.numpy() if zero_pad else window[:length].numpy()))
                out["window_index"].append(w)
                out["num_windows"].append(len(windows))
                out["window_length"].append(length)
        return out

    features = dataset.features.copy()
    for column in ("window_index", "num_windows", "window_length"):
        features[column] = Value("int32")
    result = dataset.with_format("numpy", columns=["timeseries"], output_all_columns=True).map(
        cut, batched=True, batch_size=64, features=features, with_indices=True, load_from_cache_file=False,
        desc="windows")
    if short:
        _warn_short(dataset, short, window_size, min_length, policy)
    return result.with_format(dataset.format["type"])


def _warn_short(dataset, short: list[tuple[int, int]], window_size: int, min_length: int, policy: str) -> None:
    from .identity import scan_labels

    short = sorted(short)
    names = [f"{name} ({n} TRs)" for name, (_, n) in zip(scan_labels(dataset, [i for i, _ in short[:5]]), short)]
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    if policy == "pad":
        lost = sum(1 for _, n in short if n < min_length)
        action = "kept as one window of their valid TRs (short_series='pad')" + (
            f"; {lost} with fewer than {min_length} TRs dropped" if lost else "")
    else:
        action = "dropped (short_series='drop')"
    warnings.warn(f"{len(short)} of {len(dataset)} series are shorter than the window ({window_size} TRs), "
                  f"{action}: {', '.join(names)}{more}", RuntimeWarning, stacklevel=3)


def add_connectivity(dataset, kind: str = "correlation", *, fisher_z: bool = False, batch_size: int = 256,
                     remove_timeseries: bool = True, num_proc: int | None = None):
    """Precompute FC with a batched ``map``: ``timeseries`` (T x N) -> ``connectivity`` (N x N).

    Rows with a ``window_length`` column (:func:`expand_windows`) are correlated over their first
    ``window_length`` TRs only, so zero-padded windows ignore their padding.

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict
    kind : str
        Connectivity kind (``lcm_hf.connectivity.CONNECTIVITY_KINDS``).
    fisher_z : bool
        Fisher z-transform.
    batch_size : int
        Rows per FC batch (variable lengths are padded and masked).
    remove_timeseries : bool
        Drop the ``timeseries`` column (default True, keeps the set small).

    Returns
    -------
    same type as ``dataset`` with an ``Array2D((N, N), "float32")`` ``connectivity`` column.
    """
    from datasets import Array2D, DatasetDict

    if isinstance(dataset, DatasetDict):
        return DatasetDict({k: add_connectivity(v, kind, fisher_z=fisher_z, batch_size=batch_size,
                                                remove_timeseries=remove_timeseries, num_proc=num_proc)
                            for k, v in dataset.items()})
    if connectome_column(dataset) == "connectivity":
        return dataset
    n = num_rois_of(dataset)
    features = dataset.features.copy()
    if remove_timeseries:
        del features["timeseries"]
    features["connectivity"] = Array2D(shape=(n, n), dtype="float32")

    def compute(batch):
        series = [np.require(t, dtype=np.float32, requirements="W") for t in batch["timeseries"]]  # torch: writable
        if "window_length" in batch:  # FC over each window's valid TRs, never its zero padding
            series = [s[: int(n)] for s, n in zip(series, batch["window_length"])]
        ids = batch.get("subject_id")
        fc = compute_connectivity(series, kind=kind, fisher_z=fisher_z, subject_ids=ids)
        return {"connectivity": fc.numpy()}

    result = dataset.with_format("numpy", columns=["timeseries"], output_all_columns=True).map(
        compute, batched=True, batch_size=batch_size, features=features, num_proc=num_proc,
        remove_columns=["timeseries"] if remove_timeseries else None, desc="connectivity")
    return result.with_format(dataset.format["type"])


def add_labels(dataset, vocabulary, column: str = "labels", *, fill=None):
    """Add the ``labels`` column (K float32 per row, NaN where missing) from phenotype columns.

    With labels and connectivity precomputed, the HF ``Trainer`` can keep its default
    ``remove_unused_columns=True`` (it keeps exactly ``connectivity`` and ``labels``).

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict
    vocabulary : BeiVocabulary
    column : str
        Name of the labels column (replaced when it exists).
    fill : array-like (len(dataset), K), optional
        Extra labels (e.g. a pretrained model's confident predictions) used only where the
        phenotype columns give none; NaN entries fill nothing. Not for a DatasetDict.
    """
    from datasets import DatasetDict, Sequence, Value

    if isinstance(dataset, DatasetDict):
        if fill is not None:
            raise ValueError("expected a Dataset with `fill` (one row of labels per row), got a DatasetDict")
        return DatasetDict({k: add_labels(v, vocabulary, column) for k, v in dataset.items()})
    names = [n for n in vocabulary.names if n in dataset.column_names]
    if fill is not None:
        fill = np.asarray(fill, dtype=np.float32)
        if fill.shape != (len(dataset), len(vocabulary)):
            raise ValueError(
                f"expected `fill` of shape ({len(dataset)}, {len(vocabulary)}) (rows, BEIs), got {fill.shape}")
    features = dataset.features.copy()
    features[column] = Sequence(Value("float32"), length=len(vocabulary))

    def encode(*columns_and_indices):  # only the phenotype columns are read (not the FC)
        *columns, indices = columns_and_indices
        rows = [dict(zip(names, values)) for values in zip(*columns)] if names else [{}] * len(indices)
        labels = vocabulary.encode(rows, return_tensors="np")
        if fill is not None:
            labels = np.where(np.isnan(labels), fill[indices], labels)
        return {column: labels}

    return dataset.map(encode, batched=True, batch_size=1000, features=features, input_columns=names,
                       with_indices=True, desc="labels")


__all__ = ["add_connectivity", "add_labels", "expand_windows"]
