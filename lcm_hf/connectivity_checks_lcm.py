"""Checks of connectivity values and of constant series, naming the subject (and ROI) at fault.

:func:`check_connectivity_values` runs once where a batch is prepared (collator, processor), never inside a
training step: it reads tensor values. Part of the model core shipped as Hub remote code (numpy and torch only).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .errors_lcm import LcmInputError, LcmInputTypeError


def _subject_name(index: int, subject_ids: Sequence | None) -> str:
    if subject_ids is not None and index < len(subject_ids):
        return f"subject {subject_ids[index]!r}"
    return f"subject {index}"


def _warn_constant(
    constant: torch.Tensor, subject_ids: Sequence | None, roi_names: Sequence | None
) -> None:
    blank = torch.nonzero(constant.all(dim=1)).flatten().tolist()
    if blank:  # every ROI constant: no signal at all, predictions from it would look normal but mean nothing
        names = ", ".join(_subject_name(b, subject_ids) for b in blank[:10])
        more = f" and {len(blank) - 10} more" if len(blank) > 10 else ""
        warnings.warn(
            f"blank scan (every ROI constant): {names}{more}: its FC is all zeros, predictions from it are meaningless",
            RuntimeWarning,
            stacklevel=3,
        )
        constant = constant.clone()
        constant[blank] = False
    pairs = torch.nonzero(constant).tolist()
    if not pairs:
        return
    shown = []
    for b, r in pairs[:10]:
        roi = f"ROI {roi_names[r]!r}" if roi_names is not None else f"ROI {r}"
        shown.append(f"{_subject_name(b, subject_ids)} {roi}")
    more = f" and {len(pairs) - 10} more" if len(pairs) > 10 else ""
    warnings.warn(
        f"constant time series (zero variance), their FC rows are set to 0: {', '.join(shown)}{more}",
        RuntimeWarning,
        stacklevel=3,
    )


MAX_ABS_CONNECTIVITY = 1e6  # FC values beyond this are not correlations, z-scores or sane covariances


def check_connectivity_values(
    connectivity, subject_ids: Sequence | None = None, max_abs: float = MAX_ABS_CONNECTIVITY
) -> None:
    """Check the values of connectivity matrices (B, N, N) once, where a batch is prepared (collator, processor).

    Raises ``ValueError`` naming the first subject with NaN/inf values or values beyond ``max_abs``; warns
    (``RuntimeWarning``) about blank matrices (all zero off the diagonal: a constant scan). Reads the values,
    so it does not belong inside a training step.
    """
    fc = connectivity if isinstance(connectivity, torch.Tensor) else torch.as_tensor(np.asarray(connectivity))
    if fc.is_complex():
        raise LcmInputTypeError(f"expected real connectivity, got complex values ({fc.dtype})")
    if fc.ndim == 2:
        fc = fc.unsqueeze(0)
    if fc.numel() == 0:
        return
    magnitude = fc.abs()  # (B, N, N); one pass each below: peak (NaN and inf propagate), peak off the diagonal
    peak = magnitude.flatten(1).amax(dim=1)
    bad = ~(peak <= max_abs)  # NaN compares False
    if bool(bad.any()):
        i = int(torch.nonzero(bad).flatten()[0])
        if not bool(torch.isfinite(peak[i])):
            raise LcmInputError(
                f"expected finite `connectivity`, got NaN or inf values for {_subject_name(i, subject_ids)}"
            )
        raise LcmInputError(
            f"expected `connectivity` values within +-{max_abs:g} (correlations, z-scores), got {float(peak[i]):.3g} "
            f"for {_subject_name(i, subject_ids)}"
        )
    if fc.shape[-1] > 1:
        magnitude.diagonal(dim1=-2, dim2=-1).zero_()
        blank = torch.nonzero(magnitude.flatten(1).amax(dim=1) == 0).flatten().tolist()
        if blank:
            names = ", ".join(_subject_name(b, subject_ids) for b in blank[:10])
            warnings.warn(
                f"blank connectivity (all zero off the diagonal, e.g. a constant scan): {names}"
                f"{f' and {len(blank) - 10} more' if len(blank) > 10 else ''}: predictions from it are meaningless",
                RuntimeWarning,
                stacklevel=2,
            )


__all__ = ["MAX_ABS_CONNECTIVITY", "check_connectivity_values"]
