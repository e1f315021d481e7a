"""Connectivity kinds that depend on a group reference (``tangent``), fitted once and then applied per window.

nilearn's ``ConnectivityMeasure(kind="tangent").fit_transform`` fits the reference (the geometric mean of the
covariances) on whatever group it is given, so a subject's FC would depend on its batch mates. Here the
reference is fitted once on training data (:func:`fit_tangent_reference`, nilearn's geometric mean) and stored
with the processor; :func:`tangent_connectivity` maps any window against it, alone or in a batch, with the same
maths as nilearn's ``transform`` (Ledoit-Wolf covariance, whitening, matrix logarithm).

Imports only numpy and torch (nilearn lazily, for the fit), so it ships as Hub remote code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .errors_lcm import LcmInputError

GROUP_KINDS = ("tangent",)


def ledoit_wolf_covariance(x) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance of one series (equals ``sklearn.covariance.LedoitWolf().covariance_``).

    Parameters
    ----------
    x : array-like (T, N)

    Returns
    -------
    numpy.ndarray (N, N) float64
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    n, p = x.shape
    cov = x.T @ x / n
    if p == 1:
        return cov
    x2 = x**2
    trace = x2.sum(axis=0) / n
    mu = trace.sum() / p
    delta_ = float((cov**2).sum())
    beta = (float((x2.T @ x2).sum()) / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * trace.sum() + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    cov = (1.0 - shrinkage) * cov
    cov.flat[:: p + 1] += shrinkage * mu
    return cov


def _map_eigenvalues(function, matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * function(values)) @ vectors.T


def fit_tangent_reference(pieces: Sequence) -> dict[str, np.ndarray]:
    """The tangent-space reference of a group of windows (nilearn's ``ConnectivityMeasure.fit``).

    Parameters
    ----------
    pieces : sequence of array-likes (T_w, N)
        Training windows (valid TRs only), at least 2.

    Returns
    -------
    dict
        ``"mean"`` (N, N), the geometric mean of the Ledoit-Wolf covariances, and ``"whitening"`` (N, N), its
        inverse square root; float64 arrays (saved as safetensors).
    """
    if len(pieces) < 2:
        raise LcmInputError(f"expected at least 2 windows to fit the tangent reference, got {len(pieces)}")
    try:  # optional dependency, kept out of the remote-code import check
        from nilearn.connectome import ConnectivityMeasure
    except ImportError as err:
        raise ImportError("fitting the 'tangent' reference needs nilearn: pip install nilearn") from err
    arrays = [p.double().numpy() if isinstance(p, torch.Tensor) else np.asarray(p, dtype=np.float64) for p in pieces]
    measure = ConnectivityMeasure(kind="tangent", standardize=False).fit(arrays)
    return {"mean": np.asarray(measure.mean_, dtype=np.float64), "whitening": np.asarray(measure.whitening_, dtype=np.float64)}


def tangent_connectivity(pieces: Sequence, reference: Mapping[str, np.ndarray]) -> torch.Tensor:
    """Tangent-space FC of windows against a fitted reference: ``logm(W C W)``, C the window's Ledoit-Wolf
    covariance, W the reference's whitening.

    Parameters
    ----------
    pieces : sequence of array-likes (T_w, N)
    reference : dict from :func:`fit_tangent_reference`

    Returns
    -------
    torch.Tensor (W, N, N) float32
    """
    whitening = np.asarray(reference["whitening"], dtype=np.float64)
    fc = [_map_eigenvalues(np.log, whitening @ ledoit_wolf_covariance(
        p.double().numpy() if isinstance(p, torch.Tensor) else p) @ whitening) for p in pieces]
    return torch.as_tensor(np.stack(fc), dtype=torch.float32)


__all__ = ["GROUP_KINDS", "fit_tangent_reference", "ledoit_wolf_covariance", "tangent_connectivity"]
