"""The window rule: which TRs of a ``(T, N)`` series make the windows (one window = one sample) and their FC.

One rule for every path (training data, streaming, the collator, prediction, the pipeline, embeddings):

- windows of ``size`` TRs start every ``stride`` TRs (default ``size``: non-overlapping, as in the paper);
- a tail shorter than a window is not a window (dropped): no window is shorter than ``size``, except
- a series shorter than one window, which follows ``short_series``: ``"drop"`` (no window) or ``"pad"`` (one
  window of all its TRs, when it has at least :data:`~lcm_hf.connectivity_lcm.MIN_TIMEPOINTS`);
- random crops (streaming) shift all windows of a series by one offset in ``[0, slack]``, ``slack`` the TRs
  the full windows leave over, drawn from a given ``numpy.random.Generator``;
- censored (scrubbed) volumes, rows of NaN in their place in time (:func:`censored_rows`; the reader keeps them only
  with ``censored_volumes="drop"``), keep the windows where they are, and a window holding one is dropped: no window
  straddles a gap, every window is ``size`` consecutive valid TRs (the padded window of a short series too). FC
  without windows (a whole series) uses its valid volumes (:func:`valid_volumes`).

:class:`~lcm_hf.processing_lcm.LcmProcessor` holds a model's ``size`` / ``stride`` / ``short_series`` (its
contract) and calls :func:`window_spans`; every other path cuts windows through the processor.

- :func:`window_spans`: the rule, as ``(start, valid TRs)`` pairs.
- :func:`censored_rows` / :func:`valid_volumes`: the censored volumes of a series, the series without them.
- :func:`sliding_windows`: the windows as a zero-padded ``(W, size, N)`` tensor and their valid TRs.
- :func:`windowed_connectivity`: their FC over each window's valid TRs (never the padding).

Part of the model core shipped as Hub remote code (numpy and torch only).
"""

from __future__ import annotations

import numpy as np
import torch

from .connectivity_lcm import MIN_TIMEPOINTS, TORCH_KINDS, compute_connectivity
from .errors_lcm import LcmInputError

DEFAULT_WINDOW_SIZE = 90
"""The one default window length in TRs (scripts, :func:`sliding_windows`, ``expand_windows``). 90 TRs fit
the 120-300 TR resting-state scans of typical cohorts (ABIDE, ADHD-200, the demo cohort); the paper cut its
large cohorts into 500-TR windows: pass ``--window_size 500`` (``window_size=500``) to reproduce it."""
SHORT_SERIES_POLICIES = ("drop", "pad")
"""What a series shorter than one window gives: no window (``"drop"``, the default) or one window of all its TRs."""
DEFAULT_SHORT_SERIES = "drop"


def check_window_spec(size, stride=None, short_series: str = DEFAULT_SHORT_SERIES) -> int:
    """Refuse a window specification that cannot cut windows; return the stride (default ``size``).

    Raises
    ------
    ValueError
        Naming the field (``window_size``, ``window_stride``, ``short_series``), what was expected and given.
    """
    for name, value in (("window_size", size), ("window_stride", stride)):
        if value is None and name == "window_stride":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise LcmInputError(f"expected `{name}` to be a positive int, got {value!r}")
    if short_series not in SHORT_SERIES_POLICIES:
        raise LcmInputError(f"expected `short_series` to be one of {list(SHORT_SERIES_POLICIES)}, got {short_series!r}")
    return int(size if stride is None else stride)


def censored_rows(timeseries) -> np.ndarray:
    """Bool mask (T,) of the censored volumes of a (T, N) series (numpy or torch): its rows that are NaN in every ROI.

    A row with only some NaN is not censored (the reader refuses it; FC refuses it as non-finite).
    """
    if isinstance(timeseries, torch.Tensor):
        if timeseries.ndim != 2 or timeseries.shape[1] == 0 or not timeseries.is_floating_point():
            return np.zeros(timeseries.shape[0] if timeseries.ndim else 0, dtype=bool)
        return torch.isnan(timeseries).all(dim=1).cpu().numpy()
    x = np.asarray(timeseries)
    if x.ndim != 2 or x.shape[1] == 0 or not np.issubdtype(x.dtype, np.floating):
        return np.zeros(x.shape[0] if x.ndim else 0, dtype=bool)
    return np.isnan(x).all(axis=1)


def valid_volumes(timeseries):
    """The series without its censored volumes (:func:`censored_rows`), for FC over a whole series: the series itself
    when none is censored."""
    censored = censored_rows(timeseries)
    if not censored.any():
        return timeseries
    keep = np.flatnonzero(~censored)
    return timeseries[torch.as_tensor(keep)] if isinstance(timeseries, torch.Tensor) else np.asarray(timeseries)[keep]


def window_spans(
    n_time: int,
    size: int,
    stride: int | None = None,
    *,
    short_series: str = DEFAULT_SHORT_SERIES,
    rng: np.random.Generator | None = None,
    censored=None,
) -> list[tuple[int, int]]:
    """The windows of a series of ``n_time`` TRs by the window rule (module docstring).

    Parameters
    ----------
    n_time : int
        TRs of the series.
    size : int
        Window length in TRs.
    stride : int, optional
        Step between window starts (default ``size``).
    short_series : {"drop", "pad"}
        A series shorter than ``size``: no window, or one window of all its TRs (none below 3 TRs).
    rng : numpy.random.Generator, optional
        Random crops: every start shifted by ``rng.integers(0, slack + 1)`` (drawn only when ``slack > 0``),
        ``slack = n_time - ((count - 1) * stride + size)``. None: windows start at TR 0.
    censored : array-like of bool, shape (n_time,), optional
        Censored volumes (:func:`censored_rows`): the windows stay where they are and those holding one are dropped.

    Returns
    -------
    list of (int, int)
        ``(start, valid TRs)`` of each window: ``floor((n_time - size) / stride) + 1`` windows of ``size`` TRs,
        or for a short series ``[]`` / ``[(0, n_time)]``; less the windows holding a censored volume.

    Examples
    --------
    >>> window_spans(191, 90)
    [(0, 90), (90, 90)]
    >>> window_spans(40, 90), window_spans(40, 90, short_series="pad")
    ([], [(0, 40)])
    >>> censored = np.zeros(300, dtype=bool); censored[95] = True
    >>> window_spans(300, 90, censored=censored)
    [(0, 90), (180, 90)]
    """
    stride = check_window_spec(size, stride, short_series)
    n_time = int(n_time)
    if n_time < size:
        return _uncensored([(0, n_time)] if short_series == "pad" and n_time >= MIN_TIMEPOINTS else [], censored, n_time)
    count = (n_time - size) // stride + 1
    slack = n_time - ((count - 1) * stride + size)
    offset = int(rng.integers(0, slack + 1)) if rng is not None and slack > 0 else 0
    return _uncensored([(offset + k * stride, int(size)) for k in range(count)], censored, n_time)


def _uncensored(spans: list[tuple[int, int]], censored, n_time: int) -> list[tuple[int, int]]:
    """The spans holding no censored volume."""
    if censored is None:
        return spans
    censored = np.asarray(censored, dtype=bool)
    if censored.shape != (n_time,):
        raise LcmInputError(f"expected a censored-volume mask of {n_time} TRs, got shape {censored.shape}")
    if not censored.any():
        return spans
    before = np.concatenate([[0], np.cumsum(censored)])  # censored volumes before each TR
    return [(start, length) for start, length in spans if before[start + length] == before[start]]


def sliding_windows(
    timeseries,
    size: int = DEFAULT_WINDOW_SIZE,
    stride: int | None = None,
    *,
    short_series: str = DEFAULT_SHORT_SERIES,
    rng: np.random.Generator | None = None,
    pad_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut one ``(T, N)`` series into the windows of :func:`window_spans` (a tail shorter than a window dropped,
    a window holding a censored volume, a row of NaN, dropped).

    Only the one window of a short series under ``short_series="pad"`` holds padding (``pad_value``); compute
    the FC over the valid TRs only (``lengths``, e.g. :func:`windowed_connectivity`).

    Parameters
    ----------
    timeseries : array-like, shape (T, N)
    size, stride, short_series, rng
        As in :func:`window_spans`.
    pad_value : float

    Returns
    -------
    windows : torch.Tensor, shape (W, size, N)
    lengths : torch.Tensor of int64, shape (W,)
        Valid TRs per window (W = 0 for a dropped series).
    """
    x = timeseries if isinstance(timeseries, torch.Tensor) else torch.as_tensor(np.asarray(timeseries))
    if x.ndim != 2:
        raise LcmInputError(f"expected `timeseries` of shape (T, N), got {tuple(x.shape)}")
    spans = window_spans(x.shape[0], size, stride, short_series=short_series, rng=rng, censored=censored_rows(x))
    windows = x.new_full((len(spans), size, x.shape[1]), pad_value)
    for w, (start, length) in enumerate(spans):
        windows[w, :length] = x[start : start + length]
    return windows, torch.tensor([length for _, length in spans], dtype=torch.int64)


def windowed_connectivity(
    timeseries,
    size: int = DEFAULT_WINDOW_SIZE,
    stride: int | None = None,
    *,
    short_series: str = DEFAULT_SHORT_SERIES,
    kind: str = "correlation",
    fisher_z: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FC of each window of one ``(T, N)`` series (:func:`sliding_windows`), over its valid time points only.

    Parameters
    ----------
    timeseries : array-like, shape (T, N)
    size, stride, short_series
        As in :func:`window_spans`.
    kind : str
        A torch kind (``"correlation"``, ``"partial correlation"``, ``"covariance"``); group kinds (``tangent``)
        need a fitted `LcmProcessor`.
    fisher_z : bool
        Apply the Fisher z-transform.
    dtype : torch.dtype

    Returns
    -------
    fc : torch.Tensor, shape (W, N, N)
    lengths : torch.Tensor of int64, shape (W,)

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((1200, 4)) + 100.0
    >>> fc, lengths = windowed_connectivity(x, 500, dtype=torch.float64)
    >>> bool(np.allclose(fc[1].numpy(), np.corrcoef(x[500:1000].T))), lengths.tolist()
    (True, [500, 500])
    """
    if kind not in TORCH_KINDS:
        raise LcmInputError(f"expected a torch connectivity kind {list(TORCH_KINDS)} for windows, got {kind!r}")
    windows, lengths = sliding_windows(timeseries, size, stride, short_series=short_series)
    n = windows.shape[-1]
    if windows.shape[0] == 0:
        return windows.new_zeros((0, n, n), dtype=dtype), lengths
    fc = compute_connectivity(windows, kind=kind, lengths=lengths, fisher_z=fisher_z, dtype=dtype)
    return fc, lengths


__all__ = [
    "DEFAULT_SHORT_SERIES",
    "DEFAULT_WINDOW_SIZE",
    "SHORT_SERIES_POLICIES",
    "censored_rows",
    "check_window_spec",
    "sliding_windows",
    "valid_volumes",
    "window_spans",
    "windowed_connectivity",
]
