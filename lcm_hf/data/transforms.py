"""Dataset transforms: window expansion, FC precomputation, label columns.

For speed, compute FC once with :func:`add_connectivity` (a batched ``Dataset.map``) rather
than in the collator at every epoch.
"""

from __future__ import annotations

import numpy as np
import torch

from ..connectivity import compute_connectivity, sliding_windows
from .schema import connectome_column, num_rois_of


def expand_windows(dataset, window_size: int = 500, stride: int | None = None, *, drop_last: bool = False,
                   zero_pad: bool = False, min_length: int = 3):
    """One row per time-series window; every other column (``subject_id`` included) is copied.

    Parameters
    ----------
    dataset : datasets.Dataset
        With a ``timeseries`` column (T x N).
    window_size, stride : int
        Window length and step in TRs (paper: 500, non-overlapping).
    drop_last : bool
        Drop a last window shorter than ``window_size``.
    zero_pad : bool
        Store the short last window zero-padded to ``window_size`` (then its FC correlates over
        the zeros, as the reference code does). Default False: it is stored trimmed, which
        equals zero-padding with the padding ignored.
    min_length : int
        Windows with fewer valid points are dropped.

    Returns
    -------
    datasets.Dataset
        Columns of ``dataset`` plus ``window_index`` (int32) and ``num_windows`` (int32).
    """
    from datasets import Value

    if "timeseries" not in dataset.column_names:
        raise ValueError(f"expected a 'timeseries' column to cut into windows, got {dataset.column_names}")

    def cut(batch):
        out = {k: [] for k in batch}
        out["window_index"], out["num_windows"] = [], []
        for i, ts in enumerate(batch["timeseries"]):
            windows, lengths = sliding_windows(torch.as_tensor(np.asarray(ts, dtype=np.float32)), window_size, stride,
                                               drop_last=drop_last, min_length=min_length)
            for w, (window, length) in enumerate(zip(windows, lengths.tolist())):
                for key in batch:
                    out[key].append(batch[key][i] if key != "timeseries" else
                                    (window.numpy() if zero_pad else window[:length].numpy()))
                out["window_index"].append(w)
                out["num_windows"].append(len(windows))
        return out

    features = dataset.features.copy()
    features["window_index"] = Value("int32")
    features["num_windows"] = Value("int32")
    result = dataset.with_format("numpy", columns=["timeseries"], output_all_columns=True).map(
        cut, batched=True, batch_size=64, features=features, desc="windows")
    return result.with_format(dataset.format["type"])


def add_connectivity(dataset, kind: str = "correlation", *, fisher: bool = False, batch_size: int = 256,
                     remove_timeseries: bool = True, num_proc: int | None = None):
    """Precompute FC with a batched ``map``: ``timeseries`` (T x N) -> ``connectivity`` (N x N).

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict
    kind : str
        Connectivity kind (``lcm_hf.connectivity.CONNECTIVITY_KINDS``).
    fisher : bool
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
        return DatasetDict({k: add_connectivity(v, kind, fisher=fisher, batch_size=batch_size,
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
        series = [np.asarray(t, dtype=np.float32) for t in batch["timeseries"]]
        ids = batch.get("subject_id")
        fc = compute_connectivity(series, kind=kind, fisher=fisher, subject_ids=ids)
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
