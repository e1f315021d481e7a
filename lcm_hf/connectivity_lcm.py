"""Functional connectivity (FC) maths, batched in torch (CPU or GPU).

Everything here works on ROI time series laid out as ``(T, N)`` per subject (rows are time
points, columns are regions) or ``(B, T, N)`` per batch, and returns ``(B, N, N)`` matrices.

- :func:`pearson_connectivity`: Pearson correlation, float32 by default (float64 on request),
  variable-length subjects through ``lengths`` (or a list of arrays of different length).
  Equals ``np.corrcoef(ts.T)`` and nilearn's
  ``ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())`` within 1e-5.
  Note: nilearn's *default* estimator is Ledoit-Wolf, which shrinks the covariance towards a
  scaled identity, so its default "correlation" is *not* the Pearson correlation.
- :func:`partial_correlation`, :func:`covariance`.
- Windows (:mod:`windows_lcm`) and value checks of ready matrices (:mod:`connectivity_checks_lcm`)
  live in sibling files.
- :func:`fisher_z`: ``arctanh`` with clipping and a safe (finite) diagonal.
- :func:`nilearn_connectivity`: the nilearn-backed kinds (``"tangent"``, shrunk covariance, ...).
- :func:`compute_connectivity`: one entry point dispatching on ``kind``.

Constant ROIs (all valid values equal, tested exactly) give zero rows and columns (diagonal included) with a warning naming the subject
and the ROI; NaN/inf values and fewer than 3 time points raise ``ValueError`` naming the subject.

This module imports only numpy and torch (nilearn lazily), so it ships as Hub remote code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .connectivity_checks_lcm import _subject_name, _warn_constant
from .errors_lcm import LcmInputError, LcmInputTypeError

MIN_TIMEPOINTS = 3
CHUNK_BYTES = 4 << 20  # input bytes per chunk of `pearson_connectivity` (cache-sized)
TORCH_KINDS = ("correlation", "partial correlation", "covariance")
NILEARN_KINDS = ("tangent", "shrunk covariance", "ledoit-wolf correlation", "precision")
CONNECTIVITY_KINDS = TORCH_KINDS + NILEARN_KINDS


def _to_tensor(array, dtype: torch.dtype, device=None) -> torch.Tensor:
    if (array.is_complex() if isinstance(array, torch.Tensor) else np.iscomplexobj(array)):
        raise LcmInputTypeError("expected real `timeseries`, got complex values: pass .real or abs() explicitly")
    if isinstance(array, torch.Tensor):
        return array.to(dtype=dtype, device=device)
    if isinstance(array, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array)).to(dtype=dtype, device=device)
    try:
        return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=dtype, device=device)
    except (TypeError, ValueError) as err:
        raise LcmInputTypeError(
            f"expected `timeseries` as a tensor, an array or nested lists of numbers, got {type(array).__name__}"
        ) from err


def stack_timeseries(
    timeseries,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Bring time series to one zero-padded ``(B, T_max, N)`` tensor.

    Parameters
    ----------
    timeseries : array-like (T, N) or (B, T, N), or sequence of (T_i, N) array-likes
        One subject, a batch, or a list of subjects of different lengths.
    dtype : torch.dtype
        Result dtype.
    device : torch.device, optional

    Returns
    -------
    padded : torch.Tensor, shape (B, T_max, N)
    lengths : torch.Tensor of int64, shape (B,), or None when all subjects have T_max points
    single : bool
        True when the input was one (T, N) array (callers then drop the batch axis).
    """
    if isinstance(timeseries, (list, tuple)):
        if len(timeseries) == 0:
            raise LcmInputError("expected at least one time series, got an empty sequence")
        if all(isinstance(t, (int, float)) for t in timeseries):
            raise LcmInputError("expected `timeseries` of shape (T, N) or (B, T, N), got a 1-D sequence")
        first = np.asarray(timeseries[0]) if not isinstance(timeseries[0], torch.Tensor) else timeseries[0]
        if first.ndim == 1:
            tensor = _to_tensor(timeseries, dtype, device)
            return _check_ndim(tensor)
        items = [_to_tensor(t, dtype, device) for t in timeseries]
        for i, item in enumerate(items):
            if item.ndim != 2:
                raise LcmInputError(f"expected time series {i} of shape (T, N), got {tuple(item.shape)}")
        n_rois = items[0].shape[1]
        for i, item in enumerate(items):
            if item.shape[1] != n_rois:
                raise LcmInputError(
                    f"expected every time series to have {n_rois} ROIs (columns) like the first, "
                    f"got {item.shape[1]} for time series {i}"
                )
        lengths = torch.tensor([item.shape[0] for item in items], dtype=torch.int64)
        t_max = int(lengths.max())
        if bool((lengths == t_max).all()):
            return torch.stack(items), None, False
        padded = items[0].new_zeros((len(items), t_max, n_rois))
        for i, item in enumerate(items):
            padded[i, : item.shape[0]] = item
        return padded, lengths.to(device) if device is not None else lengths, False
    return _check_ndim(_to_tensor(timeseries, dtype, device))


def _check_ndim(tensor: torch.Tensor):
    if tensor.ndim == 2:
        return tensor.unsqueeze(0), None, True
    if tensor.ndim != 3:
        raise LcmInputError(f"expected `timeseries` of shape (T, N) or (B, T, N), got {tuple(tensor.shape)}")
    return tensor, None, False


def _validate(
    x: torch.Tensor, lengths: torch.Tensor | None, subject_ids: Sequence | None, min_timepoints: int
) -> None:
    _validate_lengths(x, lengths, subject_ids, min_timepoints)
    finite = torch.isfinite(x).flatten(1).all(dim=1)
    if not bool(finite.all()):
        i = int(torch.nonzero(~finite).flatten()[0])
        raise LcmInputError(
            f"expected finite time series, got NaN or inf values for {_subject_name(i, subject_ids)}"
        )


def _validate_lengths(
    x: torch.Tensor, lengths: torch.Tensor | None, subject_ids: Sequence | None, min_timepoints: int
) -> None:
    n_timepoints = lengths if lengths is not None else torch.full((x.shape[0],), x.shape[1])
    short = torch.nonzero(n_timepoints < min_timepoints).flatten().tolist()
    if short:
        i = short[0]
        raise LcmInputError(
            f"expected at least {min_timepoints} time points for {_subject_name(i, subject_ids)}, "
            f"got {int(n_timepoints[i])}"
        )


def _time_mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    steps = torch.arange(x.shape[1], device=x.device)
    return (steps[None, :] < lengths.to(x.device)[:, None]).to(x.dtype).unsqueeze(-1)  # (B, T, 1)


def _centered(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None:
        return x - x.mean(dim=1, keepdim=True)
    mask = _time_mask(x, lengths)
    mean = (x * mask).sum(dim=1, keepdim=True) / lengths.to(x.device, x.dtype)[:, None, None]
    return (x - mean) * mask


def pearson_connectivity(
    timeseries,
    lengths=None,
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
    subject_ids: Sequence | None = None,
    roi_names: Sequence | None = None,
    batch_size: int | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Pearson functional connectivity of ROI time series, batched.

    Parameters
    ----------
    timeseries : array-like (T, N) or (B, T, N), or sequence of B array-likes (T_i, N)
        ROI time series, time points in rows. Tensors stay on their device.
    lengths : array-like of int, shape (B,), optional
        Valid time points per subject of a zero-padded (B, T, N) batch; points past
        ``lengths[b]`` are ignored. Built automatically for a list of different lengths.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``; the maths runs in this dtype.
    device : torch.device, optional
        Where to compute (default: the input's device, CPU for arrays).
    subject_ids, roi_names : sequence of str, optional
        Names used in warnings and errors.
    batch_size : int, optional
        Subjects per chunk, bounds the temporary memory. Default: as many as fit ~4 MiB of input, so the
        element-wise passes around the matrix product stay in cache.
    validate : bool
        Check finiteness and the number of time points (default True).

    Returns
    -------
    torch.Tensor, shape (B, N, N) (or (N, N) for a single (T, N) input)
        Symmetric, unit diagonal, values in [-1, 1]. Constant ROIs give zero rows and columns.

    Raises
    ------
    ValueError
        NaN/inf values or fewer than 3 time points (naming the subject), bad shapes.
    """
    if dtype not in (torch.float32, torch.float64):
        raise LcmInputTypeError(f"expected dtype torch.float32 or torch.float64, got {dtype}")
    x, auto_lengths, single = stack_timeseries(timeseries, dtype=dtype, device=device)
    if lengths is None:
        lengths = auto_lengths
    else:
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device=x.device)
        if lengths.shape != (x.shape[0],):
            raise LcmInputError(f"expected `lengths` of shape ({x.shape[0]},), got {tuple(lengths.shape)}")
        if bool((lengths > x.shape[1]).any()):
            raise LcmInputError(f"expected `lengths` <= {x.shape[1]} (the padded length), got {lengths.tolist()}")
    if validate:
        _validate_lengths(x, lengths, subject_ids, MIN_TIMEPOINTS)
    out = x.new_empty((x.shape[0], x.shape[2], x.shape[2]))
    constant = torch.zeros((x.shape[0], x.shape[2]), dtype=torch.bool, device=x.device)
    # per-subject faults, flagged on the device and read once after the loop (no host sync per chunk)
    nonfinite = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    overflow = torch.zeros_like(nonfinite)
    if batch_size is None:
        batch_size = max(1, min(64, CHUNK_BYTES // (x.shape[1] * x.shape[2] * x.element_size())))
    # chunk-sized scratch tensors, reused: fresh ones per chunk would be fresh pages (page faults) every time
    work_x = x.new_empty((min(batch_size, x.shape[0]), x.shape[1], x.shape[2]))
    work_nn = x.new_empty((2, work_x.shape[0], x.shape[2], x.shape[2]))
    for start in range(0, x.shape[0], batch_size):
        stop = min(start + batch_size, x.shape[0])
        chunk = x[start:stop]
        # shift by the first time point: constant ROIs become exact zeros (exact detection) and
        # large offsets cancel before the float32 sums
        xc = torch.sub(chunk, chunk[:, :1, :], out=work_x[: stop - start])
        if lengths is None:
            count = torch.full((stop - start, 1), float(x.shape[1]), dtype=dtype, device=x.device)
        else:
            count = lengths[start:stop].to(x.device, dtype).unsqueeze(1)
            xc.mul_(_time_mask(chunk, lengths[start:stop]))
        total = xc.sum(dim=1)  # (b, N)
        if validate:
            nonfinite[start:stop] = ~torch.isfinite(total).all(dim=1)
        xc.sub_((total / count).unsqueeze(1))
        if lengths is not None:
            xc.mul_(_time_mask(chunk, lengths[start:stop]))
        cov = torch.bmm(xc.transpose(1, 2), xc, out=work_nn[0, : stop - start])  # (b, N, N), centered products
        ssq = cov.diagonal(dim1=1, dim2=2)
        if validate:  # finite sums but non-finite squares: they overflowed (absurd magnitudes)
            overflow[start:stop] = ~torch.isfinite(ssq).all(dim=1)
        flat = ssq == 0  # constant ROI (exact, thanks to the shift)
        inv = torch.where(flat, torch.zeros_like(ssq), ssq.clamp_min(torch.finfo(dtype).tiny).rsqrt() * 0.5**0.5)
        # half correlations, scaled and clamped in the cache-sized scratch: the output is written once
        half = torch.mul(inv.unsqueeze(2), inv.unsqueeze(1), out=work_nn[1, : stop - start]).mul_(cov)
        half.clamp_(-0.5, 0.5)
        block = out[start:stop]
        torch.add(half, half.transpose(1, 2), out=block)  # exact symmetry, values in [-1, 1]
        block.diagonal(dim1=1, dim2=2).copy_((~flat).to(dtype))
        constant[start:stop] = flat
    if validate:
        any_nonfinite, any_overflow, any_constant = torch.stack(
            [nonfinite.any(), overflow.any(), constant.any()]).tolist()  # the one host sync
        if any_nonfinite or any_overflow:
            bad = int(torch.nonzero(nonfinite | overflow).flatten()[0])
            if bool(nonfinite[bad]):
                raise LcmInputError(
                    f"expected finite time series, got NaN or inf values for {_subject_name(bad, subject_ids)}"
                )
            raise LcmInputError(
                f"expected time series of sane magnitude, got values up to {float(x[bad].abs().max()):.3g} for "
                f"{_subject_name(bad, subject_ids)}: their squares overflow {dtype} (rescale the series, or use float64)"
            )
        if any_constant:
            _warn_constant(constant, subject_ids, roi_names)
    return out[0] if single else out


def covariance(timeseries, lengths=None, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Unbiased (``T - 1``) covariance of ROI time series.

    Parameters
    ----------
    timeseries : array-like (T, N) or (B, T, N), or sequence of (T_i, N)
    lengths : array-like of int, shape (B,), optional

    Returns
    -------
    torch.Tensor, shape (B, N, N) (or (N, N) for one subject)
    """
    x, auto_lengths, single = stack_timeseries(timeseries, dtype=dtype, device=device)
    lengths = auto_lengths if lengths is None else torch.as_tensor(lengths, dtype=torch.int64)
    _validate(x, lengths, None, MIN_TIMEPOINTS)
    xc = _centered(x, lengths)
    n = torch.full((x.shape[0],), x.shape[1], dtype=dtype) if lengths is None else lengths.to(dtype)
    cov = torch.bmm(xc.transpose(1, 2), xc) / (n.to(x.device) - 1)[:, None, None]
    return cov[0] if single else cov


def partial_correlation(
    timeseries, lengths=None, *, dtype: torch.dtype = torch.float32, device=None, subject_ids=None
) -> torch.Tensor:
    """Partial correlation from the inverse of the empirical covariance (computed in float64).

    Matches ``ConnectivityMeasure(kind="partial correlation", cov_estimator=EmpiricalCovariance())``.

    Parameters
    ----------
    timeseries : array-like (T, N) or (B, T, N), or sequence of (T_i, N)
        Needs more time points than ROIs (T > N) for an invertible covariance.
    lengths : array-like of int, shape (B,), optional

    Returns
    -------
    torch.Tensor, shape (B, N, N) (or (N, N)), unit diagonal
    """
    x, auto_lengths, single = stack_timeseries(timeseries, dtype=torch.float64, device=device)
    lengths = auto_lengths if lengths is None else torch.as_tensor(lengths, dtype=torch.int64)
    n_time = lengths.tolist() if lengths is not None else [x.shape[1]] * x.shape[0]
    for i, t in enumerate(n_time):
        if t <= x.shape[2]:
            raise LcmInputError(
                f"expected an invertible covariance (more time points than ROIs) for "
                f"{_subject_name(i, subject_ids)}, got T={t} <= N={x.shape[2]}"
            )
    cov = covariance(x, lengths, dtype=torch.float64)
    cov = cov.unsqueeze(0) if single else cov
    precision, info = torch.linalg.inv_ex(cov)
    if bool((info != 0).any()):
        i = int(torch.nonzero(info).flatten()[0])
        raise LcmInputError(
            f"expected an invertible covariance (more time points than ROIs) for "
            f"{_subject_name(i, subject_ids)}, got a singular one"
        )
    d = precision.diagonal(dim1=1, dim2=2).rsqrt()
    pc = -precision * d[:, :, None] * d[:, None, :]
    pc.diagonal(dim1=1, dim2=2).fill_(1.0)
    pc = pc.to(dtype)
    return pc[0] if single else pc


def fisher_z(fc, diagonal: float | None = 0.0, clip: float = 1e-6) -> torch.Tensor:
    """Fisher z-transform ``arctanh(r)`` with clipping and a safe diagonal.

    Parameters
    ----------
    fc : array-like (..., N, N)
        Correlations in [-1, 1].
    diagonal : float or None
        Value written on the diagonal (default 0.0; ``arctanh(1)`` is infinite).
        ``None`` keeps ``arctanh(1 - clip)``.
    clip : float
        Values are clipped to ``[-1 + clip, 1 - clip]`` before ``arctanh``.

    Returns
    -------
    torch.Tensor, same shape, finite
    """
    fc = fc if isinstance(fc, torch.Tensor) else torch.as_tensor(np.asarray(fc))
    if fc.ndim < 2 or fc.shape[-1] != fc.shape[-2]:
        raise LcmInputError(f"expected square matrices of shape (..., N, N), got {tuple(fc.shape)}")
    z = torch.atanh(fc.clamp(-1.0 + clip, 1.0 - clip))
    if diagonal is not None:
        z.diagonal(dim1=-2, dim2=-1).fill_(diagonal)
    return z


def nilearn_connectivity(
    timeseries, kind: str = "tangent", cov_estimator=None, dtype: torch.dtype = torch.float32, **kwargs
) -> torch.Tensor:
    """Connectivity through ``nilearn.connectome.ConnectivityMeasure`` (imported lazily).

    Parameters
    ----------
    timeseries : sequence of (T_i, N) array-likes, or (B, T, N)
    kind : str
        ``"tangent"`` (fit on the given group), ``"shrunk covariance"`` (Ledoit-Wolf covariance),
        ``"ledoit-wolf correlation"`` (nilearn's default "correlation"), ``"precision"``, or any
        kind nilearn accepts.
    cov_estimator : sklearn covariance estimator, optional
        Default: nilearn's default (Ledoit-Wolf).
    **kwargs
        Passed to ``ConnectivityMeasure`` (``standardize`` defaults to False here).

    Returns
    -------
    torch.Tensor, shape (B, N, N)
    """
    try:  # optional dependency, kept out of the remote-code import check
        from nilearn.connectome import ConnectivityMeasure
    except ImportError as err:
        raise ImportError(f"connectivity kind {kind!r} needs nilearn: pip install nilearn") from err

    nilearn_kind = {"shrunk covariance": "covariance", "ledoit-wolf correlation": "correlation"}.get(kind, kind)
    if kind == "shrunk covariance" and cov_estimator is None:
        try:
            from sklearn.covariance import LedoitWolf
        except ImportError as err:
            raise ImportError("'shrunk covariance' needs scikit-learn: pip install scikit-learn") from err

        cov_estimator = LedoitWolf(store_precision=False)
    kwargs.setdefault("standardize", False)
    if isinstance(timeseries, torch.Tensor):
        timeseries = timeseries.detach().cpu().numpy()
    subjects = [np.asarray(t, dtype=np.float64) for t in timeseries]
    measure = ConnectivityMeasure(kind=nilearn_kind, cov_estimator=cov_estimator, **kwargs)
    return torch.as_tensor(np.asarray(measure.fit_transform(subjects)), dtype=dtype)


def compute_connectivity(
    timeseries,
    kind: str = "correlation",
    lengths=None,
    *,
    fisher_z: bool = False,
    dtype: torch.dtype = torch.float32,
    subject_ids: Sequence | None = None,
    **kwargs,
) -> torch.Tensor:
    """One entry point for every connectivity kind.

    Parameters
    ----------
    timeseries : array-like (B, T, N), or sequence of (T_i, N)
    kind : str
        One of :data:`CONNECTIVITY_KINDS`: torch kinds ``"correlation"`` (Pearson),
        ``"partial correlation"``, ``"covariance"``; nilearn kinds ``"tangent"``,
        ``"shrunk covariance"``, ``"ledoit-wolf correlation"``, ``"precision"``.
    lengths : array-like of int, shape (B,), optional
        Valid points per padded subject (torch kinds only).
    fisher_z : bool
        Apply the Fisher z-transform (:func:`fisher_z`; correlation kinds).
    dtype : torch.dtype
    subject_ids : sequence of str, optional
        Names used in warnings and errors.

    Returns
    -------
    torch.Tensor, shape (B, N, N)
    """
    if kind == "correlation":
        fc = pearson_connectivity(timeseries, lengths, dtype=dtype, subject_ids=subject_ids, **kwargs)
    elif kind == "partial correlation":
        fc = partial_correlation(timeseries, lengths, dtype=dtype, subject_ids=subject_ids)
    elif kind == "covariance":
        fc = covariance(timeseries, lengths, dtype=dtype)
    elif kind in NILEARN_KINDS:
        if lengths is not None:
            x = timeseries if isinstance(timeseries, torch.Tensor) else torch.as_tensor(np.asarray(timeseries))
            timeseries = [x[i, : int(n)] for i, n in enumerate(lengths)]
        fc = nilearn_connectivity(timeseries, kind=kind, dtype=dtype, **kwargs)
    else:
        raise LcmInputError(f"expected `kind` to be one of {list(CONNECTIVITY_KINDS)}, got {kind!r}")
    return fisher_z_transform(fc) if fisher_z else fc


fisher_z_transform = fisher_z  # reachable inside functions whose `fisher_z` flag shadows the name


def flops_pearson(batch: int, timepoints: int, rois: int) -> float:
    """Floating-point operations of the batched product ``X^T X`` (the floor of Pearson FC)."""
    return 2.0 * batch * timepoints * rois * rois


__all__ = [
    "CONNECTIVITY_KINDS",
    "compute_connectivity",
    "covariance",
    "fisher_z",
    "flops_pearson",
    "nilearn_connectivity",
    "partial_correlation",
    "pearson_connectivity",
    "stack_timeseries",
]
