"""Windows of ROI time series and their FC: one window = one sample (the paper: non-overlapping 500-TR windows).

- :func:`sliding_windows`: windows of ``size`` TRs every ``stride`` TRs, the last one zero-padded (or dropped, by
  the ``short_series`` / ``drop_last`` policy), with each window's number of valid TRs.
- :func:`windowed_connectivity`: their FC over each window's valid TRs (never the padding).

Part of the model core shipped as Hub remote code (numpy and torch only).
"""

from __future__ import annotations

import numpy as np
import torch

from .connectivity import MIN_TIMEPOINTS, TORCH_KINDS, compute_connectivity


def sliding_windows(
    timeseries,
    size: int = 500,
    stride: int | None = None,
    *,
    drop_last: bool = False,
    min_length: int = MIN_TIMEPOINTS,
    pad_value: float = 0.0,
    short_series: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut one subject's ``(T, N)`` time series into windows.

    Windows start every ``stride`` TRs (default ``size``: non-overlapping, as in the paper). The
    last window may run past the end: it is padded with ``pad_value`` (the paper pads zeros),
    or dropped with ``drop_last=True``. A trailing window with fewer than ``min_length`` valid
    points is always dropped. A series shorter than ``size`` follows ``short_series``.
    Compute the FC of the windows over their valid points only (``lengths``), e.g. with
    :func:`windowed_connectivity`: correlating over the padding biases it (badly for raw,
    non-demeaned signals).

    Parameters
    ----------
    timeseries : array-like, shape (T, N)
    size : int
        Window length in TRs.
    stride : int, optional
        Step between window starts (default: ``size``).
    drop_last : bool
        Drop a last window that would need padding (a series shorter than ``size``: see ``short_series``).
    min_length : int
        Minimum number of valid points for a window to be kept.
    pad_value : float
    short_series : {"pad", "drop"}, optional
        A series shorter than ``size``: ``"pad"`` gives one padded window of its valid points (even
        with ``drop_last``), ``"drop"`` gives none. Default None: ``"drop"`` when ``drop_last`` else ``"pad"``.

    Returns
    -------
    windows : torch.Tensor, shape (W, size, N)
    lengths : torch.Tensor of int64, shape (W,)
        Valid points per window. Pass them to :func:`pearson_connectivity` to ignore the
        padding (leaving them out correlates over the padded window, like the reference code).
        A short series dropped (``short_series="drop"``, or ``drop_last`` by default) gives W = 0.
    """
    x = timeseries if isinstance(timeseries, torch.Tensor) else torch.as_tensor(np.asarray(timeseries))
    if x.ndim != 2:
        raise ValueError(f"expected `timeseries` of shape (T, N), got {tuple(x.shape)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"expected `size` to be a positive int, got {size!r}")
    stride = size if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"expected `stride` to be a positive int, got {stride!r}")
    if short_series not in (None, "pad", "drop"):
        raise ValueError(f"expected short_series 'pad' or 'drop', got {short_series!r}")
    n_time = x.shape[0]
    short = n_time < size
    if short and (short_series or ("drop" if drop_last else "pad")) == "drop":
        return x.new_zeros((0, size, x.shape[1])), torch.zeros(0, dtype=torch.int64)
    starts = list(range(0, max(n_time - size, 0) + 1, stride))
    if starts and starts[-1] + size < n_time:  # the remainder needs one more (padded) window
        starts.append(starts[-1] + stride)
    windows, lengths = [], []
    for start in starts:
        length = min(size, n_time - start)
        if length < size and drop_last and not short:
            continue
        if length < min_length:
            continue
        window = x.new_full((size, x.shape[1]), pad_value)
        window[:length] = x[start : start + length]
        windows.append(window)
        lengths.append(length)
    if not windows:
        return x.new_zeros((0, size, x.shape[1])), torch.zeros(0, dtype=torch.int64)
    return torch.stack(windows), torch.tensor(lengths, dtype=torch.int64)


def windowed_connectivity(
    timeseries,
    size: int = 500,
    stride: int | None = None,
    *,
    drop_last: bool = False,
    short_series: str | None = None,
    min_length: int = MIN_TIMEPOINTS,
    kind: str = "correlation",
    fisher_z: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FC of each window of one ``(T, N)`` series, over the window's valid time points only.

    The windows are those of :func:`sliding_windows`; a zero-padded window's FC ignores its padding,
    so it equals ``np.corrcoef`` of the valid TRs (raw, non-demeaned signals included).

    Parameters
    ----------
    timeseries : array-like, shape (T, N)
    size, stride, drop_last, short_series, min_length
        As in :func:`sliding_windows`.
    kind : str
        A torch kind (``"correlation"``, ``"partial correlation"``, ``"covariance"``).
    fisher_z : bool
        Apply the Fisher z-transform.
    dtype : torch.dtype

    Returns
    -------
    fc : torch.Tensor, shape (W, N, N)
    lengths : torch.Tensor of int64, shape (W,)
        Valid time points of each window.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((700, 4)) + 100.0
    >>> fc, lengths = windowed_connectivity(x, 500, dtype=torch.float64)
    >>> bool(np.allclose(fc[1].numpy(), np.corrcoef(x[500:].T))), lengths.tolist()
    (True, [500, 200])
    """
    if kind not in TORCH_KINDS:
        raise ValueError(f"expected a torch connectivity kind {list(TORCH_KINDS)} for windows, got {kind!r}")
    windows, lengths = sliding_windows(timeseries, size, stride, drop_last=drop_last, min_length=min_length,
                                       short_series=short_series)
    n = windows.shape[-1]
    if windows.shape[0] == 0:
        return windows.new_zeros((0, n, n), dtype=dtype), lengths
    fc = compute_connectivity(windows, kind=kind, lengths=lengths, fisher_z=fisher_z, dtype=dtype)
    return fc, lengths


__all__ = ["sliding_windows", "windowed_connectivity"]
