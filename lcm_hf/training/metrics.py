"""Per-BEI, per-layer, window- and subject-level metrics, offline (scikit-learn behind a small interface).

Metric keys (the Trainer prefixes them with ``eval_``):

- ``{bei}/{metric}``: the reduced prediction (the readout policy's), one window = one sample;
- ``{bei}/subject/{metric}``: window probabilities (values) averaged per subject (for a categorical BEI, per
  subject and class: a subject with one 'up' and one 'down' run gives two samples, never one averaged label);
- ``{bei}/scan/{metric}``: averaged per scan (with ``scan_ids``, when some subject has several scans), the level
  of labels that vary within subjects;
- ``{bei}/layer_{l}/{metric}`` and ``{bei}/layer_{l}/subject/{metric}``: the prediction read at layer ``l``;
- ``dataset/{name}/{bei}/{metric}`` (and ``.../subject/...``): the reduced prediction on one dataset;
- ``mean/{metric}`` and ``mean/subject/{metric}``: the mean over categorical BEIs.

Categorical BEIs get ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``roc_auc`` (one-vs-rest macro
for more than 2 classes; NaN when the scored samples hold a single class); continuous BEIs get ``mae``
and ``pearson_r``. Samples whose label is NaN are left out of that BEI's metrics.

The metric functions themselves (:func:`balanced_accuracy`, :func:`roc_auc`, :func:`mae`, :func:`pearson_r`) live
here too: `lcm_hf.training.evaluation` (levels, bootstrap) builds on this module, never the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors_lcm import LcmInputError

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc")
REGRESSION_METRICS = ("mae", "pearson_r")


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax of `logits` along `axis` (numerically stable)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def balanced_accuracy(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean recall over the classes present in ``targets`` (n,); ``probabilities`` (n, C)."""
    targets = np.asarray(targets).astype(int)
    predicted = np.asarray(probabilities).argmax(axis=1)
    present = np.unique(targets)
    if present.size == 0:
        return math.nan
    return float(np.mean([(predicted[targets == c] == c).mean() for c in present]))


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC-AUC of class probabilities (n, C): binary, or one-vs-rest macro over the classes present (their
    probabilities renormalised), as :func:`classification_metrics` scores them; NaN for one class."""
    targets = np.asarray(targets).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    present = np.unique(targets)
    if present.size < 2:
        return math.nan
    if probabilities.shape[1] == 2:
        return _binary_auc(targets == 1, probabilities[:, 1])
    scores = probabilities[:, present]
    scores = scores / np.clip(scores.sum(axis=1, keepdims=True), 1e-12, None)
    if present.size == 2:
        return _binary_auc(targets == present[1], scores[:, 1])
    return float(np.mean([_binary_auc(targets == c, scores[:, i]) for i, c in enumerate(present)]))


def mae(targets: np.ndarray, values: np.ndarray) -> float:
    """Mean absolute error of values (n,) against targets (n,); NaN without samples."""
    return float(np.abs(np.asarray(targets) - np.asarray(values)).mean()) if len(targets) else math.nan


def pearson_r(targets: np.ndarray, values: np.ndarray) -> float:
    """Pearson correlation of values (n,) with targets (n,); NaN with fewer than 2 samples or a constant side."""
    targets, values = np.asarray(targets, np.float64), np.asarray(values, np.float64)
    if targets.size < 2 or targets.std() == 0 or values.std() == 0:
        return math.nan
    return float(np.corrcoef(targets, values)[0, 1])


def classification_metrics(y_true: Sequence, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and ROC-AUC of class probabilities (n, C) against int labels (n,)."""
    from sklearn.metrics import f1_score

    y_true = np.asarray(y_true).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise LcmInputError(f"expected probabilities of shape ({y_true.shape[0]}, C), got {probabilities.shape}")
    y_pred = probabilities.argmax(axis=1)
    return {
        "accuracy": float((y_pred == y_true).mean()) if y_true.size else math.nan,
        "balanced_accuracy": balanced_accuracy(y_true, probabilities),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0)),
        "roc_auc": roc_auc(y_true, probabilities),  # one-vs-rest macro over the classes present, NaN for one
    }


def regression_metrics(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Mean absolute error and Pearson r (NaN when either side is constant)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {"mae": mae(y_true, y_pred), "pearson_r": pearson_r(y_true, y_pred)}


def group_mean(values: np.ndarray, groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Average rows of `values` (n, ...) within each group; returns (unique groups in first-seen order,
    means of shape (G, ...))."""
    groups = np.asarray([str(g) for g in groups])
    unique, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep first-seen order
    sums = np.zeros((unique.size,) + values.shape[1:], dtype=np.float64)
    np.add.at(sums, inverse, values)
    counts = np.bincount(inverse, minlength=unique.size).reshape((-1,) + (1,) * (values.ndim - 1))
    return unique[order], (sums / counts)[order]


def _score(bei: dict, predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """predictions: class probabilities (n, C) or values (n,); targets (n,)."""
    if bei["kind"] == "categorical":
        return classification_metrics(targets, predictions)
    return regression_metrics(targets, predictions)


def _bei_predictions(bei: dict, logits: np.ndarray) -> np.ndarray:
    """A BEI's logits (n, C) -> probabilities (n, C) (categorical) or values (n,) (continuous)."""
    return softmax(logits) if bei["kind"] == "categorical" else logits[:, 0]


def bei_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    beis: list[dict],
    layer_logits: np.ndarray | None = None,
    subject_ids: Sequence | None = None,
    datasets: Sequence | None = None,
    scan_ids: Sequence | None = None,
) -> dict[str, float]:
    """All metrics of one evaluation, as a flat dict (see the module docstring for the keys).

    Args:
        logits: reduced logits (n, P). labels: (n, K), NaN where missing. beis: `config.beis`.
        layer_logits: per-layer logits (n, L, P), for the per-layer metrics.
        subject_ids: (n,) subject of every window, for subject-level metrics (with `datasets`, subjects
            are keyed by (dataset, subject) so equal ids in two datasets stay apart).
        datasets: (n,) dataset name of every window, for per-dataset metrics.
        scan_ids: (n,) scan of every window (with `subject_ids`), for scan-level metrics.
    """
    from ..configuration_lcm import bei_token_slices

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape != (logits.shape[0], len(beis)):
        raise LcmInputError(f"expected labels of shape ({logits.shape[0]}, {len(beis)}), got {labels.shape}")
    if subject_ids is not None and datasets is not None:
        subject_ids = [f"{d}::{s}" for d, s in zip(datasets, subject_ids)]
    scans = None
    if subject_ids is not None and scan_ids is not None:
        scans = np.asarray([f"{s}::{c}" for s, c in zip(subject_ids, scan_ids)])
        if len(set(scans.tolist())) == len({str(s) for s in subject_ids}):
            scans = None  # one scan per subject: the scan level is the subject level
    results: dict[str, float] = {}

    def score_all(prefix: str, bei: dict, predictions: np.ndarray, targets: np.ndarray, groups, scan_groups=None):
        for name, value in _score(bei, predictions, targets).items():
            results[f"{prefix}{name}"] = value
        for level, keys in (("subject", groups), ("scan", scan_groups)):
            if keys is None:
                continue
            if bei["kind"] == "categorical":  # never average two classes into one sample
                keys = [f"{k}::{int(t)}" for k, t in zip(keys, targets)]
            _, level_predictions = group_mean(predictions, keys)
            _, level_targets = group_mean(targets, keys)
            for name, value in _score(bei, level_predictions, level_targets).items():
                results[f"{prefix}{level}/{name}"] = value

    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        known = ~np.isnan(labels[:, index])
        if not known.any():
            continue
        targets = labels[known, index]
        groups = None if subject_ids is None else np.asarray(subject_ids)[known]
        scan_groups = None if scans is None else scans[known]
        name = bei["name"]
        score_all(f"{name}/", bei, _bei_predictions(bei, logits[known, token_slice]), targets, groups, scan_groups)
        if layer_logits is not None:
            layer_logits = np.asarray(layer_logits, dtype=np.float64)
            for layer in range(layer_logits.shape[1]):
                predictions = _bei_predictions(bei, layer_logits[known, layer, token_slice])
                score_all(f"{name}/layer_{layer}/", bei, predictions, targets, groups, scan_groups)
        if datasets is not None:
            dataset_names = np.asarray([str(d) for d in datasets])[known]
            for dataset in sorted(set(dataset_names.tolist())):
                rows = dataset_names == dataset
                score_all(
                    f"dataset/{dataset}/{name}/",
                    bei,
                    _bei_predictions(bei, logits[known, token_slice][rows]),
                    targets[rows],
                    None if groups is None else groups[rows],
                    None if scan_groups is None else scan_groups[rows],
                )

    for level in ("", "subject/", "scan/"):
        for metric in CLASSIFICATION_METRICS:
            values = [
                results[f"{bei['name']}/{level}{metric}"]
                for bei in beis
                if bei["kind"] == "categorical" and f"{bei['name']}/{level}{metric}" in results
            ]
            values = [v for v in values if not math.isnan(v)]
            if values:
                results[f"mean/{level}{metric}"] = float(np.mean(values))
    return results


def best_layers(
    metrics: dict[str, float],
    beis: list[dict],
    metric: str = "balanced_accuracy",
    prefix: str = "eval_",
    level: str = "",
) -> dict[str, int]:
    """Per categorical BEI, the layer with the highest `{prefix}{bei}/layer_{l}/{level}{metric}` (the shallowest
    one on ties); BEIs without such metrics are left out."""
    selected = {}
    for bei in beis:
        if bei["kind"] != "categorical":
            continue
        scores = {}
        layer = 0
        while f"{prefix}{bei['name']}/layer_{layer}/{level}{metric}" in metrics:
            value = metrics[f"{prefix}{bei['name']}/layer_{layer}/{level}{metric}"]
            if value is not None and not math.isnan(value):
                scores[layer] = value
            layer += 1
        if scores:
            best = max(scores.values())
            selected[bei["name"]] = min(layer for layer, value in scores.items() if value == best)
    return selected


__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "balanced_accuracy",
    "bei_metrics",
    "best_layers",
    "classification_metrics",
    "group_mean",
    "mae",
    "pearson_r",
    "regression_metrics",
    "roc_auc",
    "softmax",
]
