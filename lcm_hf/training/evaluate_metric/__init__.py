"""The per-BEI metrics as a local `evaluate` module, shipped in the package (``lcm_bei_metrics/``).

``evaluate.load(BEI_METRIC_PATH)`` loads it from the installed package by path: no Hub access, so it works
with ``HF_HUB_OFFLINE=1``. Its `_compute` is `lcm_hf.training.metrics.bei_metrics`; `LcmTrainer` and the
reports compute their metrics through it (:func:`compute_bei_metrics`).
"""

from __future__ import annotations

import os

import numpy as np

from ...errors_lcm import LcmInputError

BEI_METRIC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lcm_bei_metrics")

_LOADED = {}


def load_bei_metric():
    """The `evaluate` module (loaded once per process, kept in memory: no cache files are written)."""
    if "metric" not in _LOADED:
        import evaluate

        _LOADED["metric"] = evaluate.load(BEI_METRIC_PATH, keep_in_memory=True)
    return _LOADED["metric"]


def compute_bei_metrics(logits, labels, beis: list[dict], **options) -> dict[str, float]:
    """`bei_metrics` computed through the `evaluate` module.

    Parameters
    ----------
    logits : array (n, P)
    labels : array (n, K), NaN where missing
    beis : the config's BEIs
    **options
        The other arguments of `bei_metrics`: layer_logits (n, L, P), subject_ids (n,), datasets (n,), ...

    Returns
    -------
    dict of str to float (see `lcm_hf.training.metrics`)
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape != (logits.shape[0], len(beis)):
        raise LcmInputError(f"expected labels of shape ({logits.shape[0]}, {len(beis)}), got {labels.shape}")
    return load_bei_metric().compute(
        predictions=logits,
        references=labels,
        beis=beis,
        **options,
    )


__all__ = ["BEI_METRIC_PATH", "compute_bei_metrics", "load_bei_metric"]
