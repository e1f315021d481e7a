"""Dataset transforms: windows and FC by the processor's contract, label columns.

Windows and FC have one home, :class:`~lcm_hf.processing_lcm.LcmProcessor`: :func:`expand_windows` cuts the
rows with :meth:`LcmProcessor.window_spans` and :func:`add_connectivity` computes FC with
:meth:`LcmProcessor.connectivity` (a group kind such as ``tangent`` with the reference fitted once, on the
training split). For speed, compute FC once with :func:`add_connectivity` (a batched ``Dataset.map``) rather
than in the collator at every epoch.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors_lcm import LcmInputError, LcmInputTypeError
from ..windows_lcm import DEFAULT_SHORT_SERIES, DEFAULT_WINDOW_SIZE
from .schema import connectome_column, num_rois_of


def window_processor(window_size=DEFAULT_WINDOW_SIZE, stride: int | None = None, short_series: str | None = None,
                     *, num_rois: int):
    """The `LcmProcessor` that cuts windows: `window_size` itself when it is one, else one built from the window
    size, stride and short-series policy (the processor's defaults for those not given).

    Raises
    ------
    TypeError
        A processor together with ``stride`` / ``short_series`` (the processor's contract says them).
    """
    from ..processing_lcm import LcmProcessor

    if isinstance(window_size, LcmProcessor):
        if stride is not None or short_series is not None:
            raise LcmInputTypeError("expected the window stride and short-series policy from the processor's contract, got "
                                    f"stride={stride!r}, short_series={short_series!r} as well")
        if window_size.window_size is None:
            raise LcmInputError("expected a processor with a `window_size` to cut windows, got window_size=None")
        return window_size
    return LcmProcessor(num_rois=num_rois, window_size=window_size, window_stride=stride,
                        short_series=short_series or DEFAULT_SHORT_SERIES)


def expand_windows(dataset, window_size=DEFAULT_WINDOW_SIZE, stride: int | None = None, *,
                   short_series: str | None = None, zero_pad: bool = False):
    """One row per window of the processor's contract; every other column (``subject_id``, ``scan_id``...) is copied.

    The windows are the processor's (:meth:`~lcm_hf.processing_lcm.LcmProcessor.window_spans`): full windows of
    ``window_size`` TRs every ``window_stride`` (a shorter tail dropped); a series shorter than one window gives
    one window of all its TRs (``short_series="pad"``) or none (``"drop"``). A window holding a censored volume (a row
    of NaN, imported with ``censored_volumes="drop"``) is dropped, said in one ``RuntimeWarning``.

    Parameters
    ----------
    dataset : datasets.Dataset
        With a ``timeseries`` column (T x N).
    window_size : LcmProcessor or int
        The processor whose contract cuts the windows (``expand_windows(ds, processor)``), or a window size in
        TRs (default :data:`~lcm_hf.windows_lcm.DEFAULT_WINDOW_SIZE`) for a processor built from it,
        ``stride`` and ``short_series`` (default ``"drop"``).
    stride : int, optional
        With an int `window_size`: step between windows (default: non-overlapping).
    short_series : {"drop", "pad"}, optional
        With an int `window_size`: series shorter than one window. Either way one ``RuntimeWarning`` says how many
        series were short, which (``subject_id/scan_id``), and the policy.
    zero_pad : bool
        Store the window of a padded short series zero-padded to ``window_size`` instead of trimmed to its valid
        TRs. Either way ``window_length`` holds the valid TRs and the FC ignores the padding.

    Returns
    -------
    datasets.Dataset
        Columns of ``dataset`` plus ``window_index``, ``num_windows`` and ``window_length`` (int32).

    Examples
    --------
    >>> processor = LcmProcessor(vocabulary=vocab, num_rois=116, window_size=90)    # doctest: +SKIP
    >>> windows = add_connectivity(expand_windows(ds, processor), processor)         # doctest: +SKIP
    """
    from datasets import Value

    if "timeseries" not in dataset.column_names:
        raise LcmInputError(f"expected a 'timeseries' column to cut into windows, got {dataset.column_names}")
    processor = window_processor(window_size, stride, short_series, num_rois=num_rois_of(dataset))
    size = processor.window_size
    short: list[tuple[int, int]] = []  # (row, TRs) of series shorter than one window
    censored: list[tuple[int, int]] = []  # (row, windows dropped) of series with censored volumes

    def cut(batch, indices):
        out = {k: [] for k in batch}
        out["window_index"], out["num_windows"], out["window_length"] = [], [], []
        for i, ts in enumerate(batch["timeseries"]):
            ts = np.asarray(ts, dtype=np.float32)
            if ts.shape[0] < size:
                short.append((indices[i], ts.shape[0]))
            spans = processor.window_spans(ts)  # censored volumes (NaN rows) in no window
            lost = len(processor.window_spans(ts.shape[0])) - len(spans)
            if lost:
                censored.append((indices[i], lost))
            for w, (start, length) in enumerate(spans):
                window = ts[start : start + length]
                if zero_pad and length < size:
                    window = np.concatenate([window, np.zeros((size - length, ts.shape[1]), np.float32)])
                for key in batch:
                    out[key].append(batch[key][i] if key != "timeseries" else window)
                out["window_index"].append(w)
                out["num_windows"].append(len(spans))
                out["window_length"].append(length)
        return out

    features = dataset.features.copy()
    for column in ("window_index", "num_windows", "window_length"):
        features[column] = Value("int32")
    result = dataset.with_format("numpy", columns=["timeseries"], output_all_columns=True).map(
        cut, batched=True, batch_size=64, features=features, with_indices=True, load_from_cache_file=False,
        desc="windows")
    if short:
        _warn_short(dataset, short, size, processor.short_series)
    if censored:
        _warn_censored(dataset, censored, size)
    return result.with_format(dataset.format["type"])


def _warn_short(dataset, short: list[tuple[int, int]], window_size: int, policy: str) -> None:
    from ..connectivity_lcm import MIN_TIMEPOINTS
    from .identity import scan_labels

    short = sorted(short)
    names = [f"{name} ({n} TRs)" for name, (_, n) in zip(scan_labels(dataset, [i for i, _ in short[:5]]), short)]
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    if policy == "pad":
        lost = sum(1 for _, n in short if n < MIN_TIMEPOINTS)
        action = "kept as one window of their valid TRs (short_series='pad')" + (
            f"; {lost} with fewer than {MIN_TIMEPOINTS} TRs dropped" if lost else "")
    else:
        action = "dropped (short_series='drop')"
    warnings.warn(f"{len(short)} of {len(dataset)} series are shorter than the window ({window_size} TRs), "
                  f"{action}: {', '.join(names)}{more}", RuntimeWarning, stacklevel=3)


def _warn_censored(dataset, censored: list[tuple[int, int]], window_size: int) -> None:
    from .identity import scan_labels

    censored = sorted(censored)
    names = [f"{name} ({n})" for name, (_, n) in zip(scan_labels(dataset, [i for i, _ in censored[:5]]), censored)]
    more = f" and {len(censored) - 5} more" if len(censored) > 5 else ""
    lost = sum(n for _, n in censored)
    windows = f"{lost} window{'s' if lost != 1 else ''} of {window_size} TRs"
    verb = "hold censored volumes and were" if lost != 1 else "holds censored volumes and was"
    warnings.warn(f"{windows} in {len(censored)} of {len(dataset)} series {verb} dropped (no window straddles a gap): "
                  f"{', '.join(names)}{more}", RuntimeWarning, stacklevel=3)


def connectivity_processor(processor=None, fisher_z: bool | None = None, *, num_rois: int | None):
    """The `LcmProcessor` that computes FC: `processor` itself, else one of kind `processor` (a kind name,
    default ``"correlation"``) with `fisher_z`. A group kind must come as a fitted processor.

    Raises
    ------
    TypeError
        A processor together with ``fisher_z`` (the processor's contract says it).
    ValueError
        A group kind given by name (it needs a reference fitted on training data: ``processor.fit``).
    """
    from ..group_connectivity_lcm import GROUP_KINDS
    from ..processing_lcm import LcmProcessor

    if isinstance(processor, LcmProcessor):
        if fisher_z is not None and bool(fisher_z) != processor.fisher_z:
            raise LcmInputTypeError(f"expected Fisher z from the processor's contract (fisher_z={processor.fisher_z}), "
                                    f"got fisher_z={fisher_z!r} as well")
        return processor
    if processor is not None and not isinstance(processor, str):
        raise LcmInputTypeError(f"expected an LcmProcessor or a connectivity kind name, got {type(processor).__name__}")
    kind = processor or "correlation"
    if kind in GROUP_KINDS:
        raise LcmInputError(f"expected a fitted LcmProcessor for the group kind {kind!r} (its reference is fitted once, "
                            f"on the training split: processor.fit(training_series)), got the kind name {kind!r}")
    return LcmProcessor(num_rois=num_rois or 1, kind=kind, fisher_z=bool(fisher_z))


def add_connectivity(dataset, processor=None, *, fisher_z: bool | None = None, batch_size: int = 256,
                     remove_timeseries: bool = True, num_proc: int | None = None):
    """Precompute FC with a batched ``map``: ``timeseries`` (T x N) -> ``connectivity`` (N x N), by the processor.

    Rows with a ``window_length`` column (:func:`expand_windows`) are correlated over their first
    ``window_length`` TRs only, so zero-padded windows ignore their padding. The FC is
    :meth:`LcmProcessor.connectivity`: the same numbers prediction computes for the same window (a group kind
    with the processor's fitted reference, never refitted per batch).

    Parameters
    ----------
    dataset : datasets.Dataset or DatasetDict
    processor : LcmProcessor or str, optional
        The processor whose kind / Fisher z / fitted reference compute the FC; or a non-group kind name
        (``lcm_hf.connectivity_lcm.CONNECTIVITY_KINDS``) for a bare processor (default ``"correlation"``).
    fisher_z : bool, optional
        With a kind name: Fisher z-transform (default False).
    batch_size : int
        Rows per FC batch.
    remove_timeseries : bool
        Drop the ``timeseries`` column (default True, keeps the set small).

    Returns
    -------
    same type as ``dataset`` with an ``Array2D((N, N), "float32")`` ``connectivity`` column.
    """
    from datasets import Array2D, DatasetDict

    if isinstance(dataset, DatasetDict):
        return DatasetDict({k: add_connectivity(v, processor, fisher_z=fisher_z, batch_size=batch_size,
                                                remove_timeseries=remove_timeseries, num_proc=num_proc)
                            for k, v in dataset.items()})
    if connectome_column(dataset) == "connectivity":
        return dataset
    n = num_rois_of(dataset)
    processor = connectivity_processor(processor, fisher_z, num_rois=n)
    features = dataset.features.copy()
    if remove_timeseries:
        del features["timeseries"]
    features["connectivity"] = Array2D(shape=(n, n), dtype="float32")

    def compute(batch):
        series = [np.require(t, dtype=np.float32, requirements="W") for t in batch["timeseries"]]  # torch: writable
        if "window_length" in batch:  # FC over each window's valid TRs, never its zero padding
            series = [s[: int(n)] for s, n in zip(series, batch["window_length"])]
        fc = processor.connectivity(series, subject_ids=batch.get("subject_id"))
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
            raise LcmInputError("expected a Dataset with `fill` (one row of labels per row), got a DatasetDict")
        return DatasetDict({k: add_labels(v, vocabulary, column) for k, v in dataset.items()})
    names = [n for n in vocabulary.names if n in dataset.column_names]
    if fill is not None:
        fill = np.asarray(fill, dtype=np.float32)
        if fill.shape != (len(dataset), len(vocabulary)):
            raise LcmInputError(
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


__all__ = ["add_connectivity", "add_labels", "connectivity_processor", "expand_windows", "window_processor"]
