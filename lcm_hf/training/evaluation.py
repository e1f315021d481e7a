"""Honest evaluation of one test split: the level each BEI is scored at, and LCM vs baseline vs chance with
bootstrap intervals over subjects.

- :func:`resolve_levels`: per BEI, ``"scan"`` (one prediction per scan, its windows averaged) or ``"subject"``
  (one per subject). ``auto`` picks ``scan`` for a label that varies within any subject (task condition, run)
  and ``subject`` otherwise.
- :func:`level_samples`: window predictions -> one sample per scan or subject. A categorical label never
  averages across classes: a subject with one 'up' and one 'down' run gives one 'up' and one 'down' sample.
- :func:`compare`: per BEI and metric, the LCM, the baseline and chance, each with a 95% percentile bootstrap
  interval over test subjects (subjects resampled with replacement, with all their samples), the paired
  difference LCM - baseline with its interval, and the verdict words of :func:`verdict`.

Chance: balanced accuracy 1 / C (C classes among the scored samples), ROC-AUC 0.5, Pearson r 0, and for
continuous BEIs the MAE of predicting the training mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors_lcm import LcmInputError
from .metrics import balanced_accuracy, group_mean, mae, pearson_r, roc_auc, softmax

EVAL_LEVELS = ("auto", "scan", "subject")
CATEGORICAL_METRICS = ("balanced_accuracy", "roc_auc")
CONTINUOUS_METRICS = ("mae", "pearson_r")
LOWER_IS_BETTER = ("mae",)


METRIC_FUNCTIONS = {"balanced_accuracy": balanced_accuracy, "roc_auc": roc_auc, "mae": mae, "pearson_r": pearson_r}


# ----------------------------------------------------------------------------- levels
def _subject_keys(subject_ids, datasets=None) -> np.ndarray:
    subjects = [str(s) for s in subject_ids]
    if datasets is None:
        return np.asarray(subjects)
    return np.asarray([f"{d}::{s}" for d, s in zip(datasets, subjects)])


def resolve_levels(labels: np.ndarray, beis: list[dict], subject_ids, eval_level: str = "auto",
                   datasets=None, scan_ids=None) -> dict[str, str]:
    """The level each BEI is scored at: ``{bei name: "scan" | "subject"}``.

    Parameters
    ----------
    labels : ndarray (n, K)
        Window labels (NaN where missing), columns in the order of ``beis``.
    beis : list of dict
        ``config.beis``.
    subject_ids, datasets, scan_ids : sequence (n,)
        Identity of every window; without ``scan_ids`` every BEI is scored per subject.
    eval_level : {"auto", "scan", "subject"}
        ``auto``: ``scan`` where a BEI's label varies within any subject, else ``subject``.

    Raises
    ------
    ValueError
        An unknown ``eval_level``.
    """
    if eval_level not in EVAL_LEVELS:
        raise LcmInputError(f"--eval_level: expected one of {list(EVAL_LEVELS)}, got {eval_level!r}")
    labels = np.asarray(labels, dtype=np.float64)
    if scan_ids is None:
        return {bei["name"]: "subject" for bei in beis}
    if eval_level != "auto":
        return {bei["name"]: eval_level for bei in beis}
    subjects = _subject_keys(subject_ids, datasets)
    levels = {}
    for index, bei in enumerate(beis):
        known = ~np.isnan(labels[:, index])
        values: dict[str, set] = {}
        for subject, value in zip(subjects[known], labels[known, index]):
            values.setdefault(subject, set()).add(float(value))
        varies = any(len(v) > 1 for v in values.values())
        levels[bei["name"]] = "scan" if varies else "subject"
    return levels


def level_samples(kind: str, predictions: np.ndarray, targets: np.ndarray, subjects: np.ndarray,
                  scans: np.ndarray | None, level: str, extra: np.ndarray | None = None):
    """Window predictions -> one sample per scan (``level="scan"``) or per subject.

    Parameters
    ----------
    kind : {"categorical", "continuous"}
    predictions : ndarray (n, C) class probabilities, or (n,) values; several models may be stacked on a
        trailing axis, e.g. (n, C, M).
    targets : ndarray (n,)
    subjects, scans : ndarray (n,)
        Subject keys (unique across datasets) and scan ids (None: subject level).
    extra : ndarray (n, ...), optional
        More per-window values averaged the same way (e.g. the chance prediction).

    Returns
    -------
    (predictions (G, ...), targets (G,), subject of each sample (G,), extra (G, ...) or None)
        Categorical samples are grouped by their label too, so classes are never averaged together.
    """
    keys = subjects if level != "scan" or scans is None else np.asarray(
        [f"{s}::{c}" for s, c in zip(subjects, scans)])
    if kind == "categorical":
        keys = np.asarray([f"{k}::{int(t)}" for k, t in zip(keys, targets)])
    unique, means = group_mean(np.asarray(predictions, dtype=np.float64), keys)
    _, target_means = group_mean(np.asarray(targets, dtype=np.float64), keys)
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    sample_subjects = np.asarray([subjects[first[k]] for k in unique])
    extra_means = None if extra is None else group_mean(np.asarray(extra, dtype=np.float64), keys)[1]
    return means, target_means, sample_subjects, extra_means


# ----------------------------------------------------------------------------- bootstrap
def bootstrap_indices(sample_subjects: np.ndarray, n_resamples: int, seed: int):
    """Yield sample indices of ``n_resamples`` resamples of the subjects (with replacement, seeded)."""
    unique, inverse = np.unique(sample_subjects, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(unique.size)]
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        chosen = rng.integers(0, unique.size, unique.size)
        yield np.concatenate([members[g] for g in chosen])


MIN_SUBJECTS = 10
"""Fewer test subjects give no interval (a bootstrap over a handful of subjects is too coarse to trust)."""

MIN_CLASS_SUBJECTS = 5
"""Fewer test subjects of a class give no interval and no verdict for that categorical BEI (an AUC or a
balanced accuracy over 1-4 subjects of a class moves by 0.2 or more with one subject)."""


def bootstrap_counts(sample_subjects: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_samples) multiplicity of every sample in each resample of :func:`bootstrap_indices`
    (the same draws: a sample appears as often as its subject was drawn)."""
    unique, inverse = np.unique(sample_subjects, return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_resamples, len(sample_subjects)), dtype=np.float64)
    for r in range(n_resamples):
        drawn = np.bincount(rng.integers(0, unique.size, unique.size), minlength=unique.size)
        counts[r] = drawn[inverse]
    return counts


def _resampled_scores(metric: str, values: np.ndarray, targets: np.ndarray, chance: np.ndarray,
                      counts: np.ndarray) -> np.ndarray:
    """(R, M + 1) scores [models..., chance] on every resample, as weighted sums where the metric allows
    (the same numbers as scoring the repeated samples), else sample by sample."""
    resamples, models = counts.shape[0], values.shape[-1]
    if resamples == 0:
        return np.zeros((0, models + 1))
    weights = counts / counts.sum(axis=1, keepdims=True)  # (R, G)
    if metric == "mae":
        errors = np.abs(values - targets[:, None])  # (G, M)
        return np.concatenate([weights @ errors, weights @ np.abs(chance - targets)[:, None]], axis=1)
    if metric == "pearson_r":
        stacked = np.concatenate([values, np.zeros((len(targets), 1))], axis=1)
        mean_t, mean_v = weights @ targets, weights @ stacked  # (R,), (R, M+1)
        cov = weights @ (targets[:, None] * stacked) - mean_t[:, None] * mean_v
        var_t = weights @ targets**2 - mean_t**2
        var_v = weights @ stacked**2 - mean_v**2
        with np.errstate(all="ignore"):
            r = cov / np.sqrt(var_t[:, None] * var_v)
        r[~((var_t[:, None] > 1e-12 * (1 + mean_t[:, None] ** 2)) & (var_v > 1e-12))] = np.nan
        r[:, -1] = 0.0
        return r
    classes = targets.astype(int)
    if metric == "balanced_accuracy":
        correct = values.argmax(axis=1) == classes[:, None]  # (G, M)
        present = np.unique(classes)
        totals = np.stack([counts[:, classes == k].sum(axis=1) for k in present], axis=1)  # (R, K)
        hits = np.stack([counts[:, classes == k] @ correct[classes == k] for k in present], axis=1)  # (R, K, M)
        with np.errstate(all="ignore"):
            recall = hits / totals[:, :, None]
        scores = np.nanmean(recall, axis=1)
        return np.concatenate([scores, 1.0 / (totals > 0).sum(axis=1, keepdims=True)], axis=1)
    rows = np.arange(len(targets))
    loop = np.ones(resamples, dtype=bool)
    scores = np.full((resamples, models + 1), np.nan)
    if metric == "roc_auc" and len(targets) <= 4000:
        present = np.unique(classes)
        complete = np.stack([counts[:, classes == k].sum(axis=1) > 0 for k in present], axis=1).all(axis=1)
        if values.shape[1] == 2:  # binary: the class-1 probability ranks, as roc_auc does
            columns, positives = values[:, 1:, :], [classes == 1]
        else:  # one-vs-rest over the classes present, their probabilities renormalised
            columns = values[:, present, :] / np.clip(values[:, present, :].sum(axis=1, keepdims=True), 1e-12, None)
            positives = [classes == k for k in present]
        for m in range(models):
            per_class = [_weighted_auc(pos, columns[:, 0 if len(positives) == 1 else i, m], counts)
                         for i, pos in enumerate(positives)]
            scores[:, m] = np.mean(per_class, axis=0)
        scores[:, -1] = 0.5
        loop = ~complete
    for r in np.flatnonzero(loop):  # sample by sample
        sample = np.repeat(rows, counts[r].astype(int))
        scores[r] = _scores(metric, values[sample], targets[sample], chance[sample])
    return scores


def _weighted_auc(positive: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(R,) ROC-AUC of ``positive`` vs the rest ranked by ``score`` (G,), samples weighted by ``counts``."""
    s_pos, s_neg = score[positive], score[~positive]
    pairs = (s_pos[:, None] > s_neg[None, :]) + 0.5 * (s_pos[:, None] == s_neg[None, :])
    c_pos, c_neg = counts[:, positive], counts[:, ~positive]
    with np.errstate(all="ignore"):
        return np.einsum("rp,pn,rn->r", c_pos, pairs, c_neg) / (c_pos.sum(1) * c_neg.sum(1))


def _interval(values: list[float]) -> list[float | None]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 20:
        return [None, None]
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def verdict(interval, higher_is_better: bool = True, against: str = "the baseline") -> str:
    """Words for a paired difference (LCM - other) from its 95% interval: "beats" only when it excludes 0.

    >>> verdict([0.02, 0.2])
    'LCM beats the baseline'
    >>> verdict([-0.1, 0.2], against="chance")
    'no detectable difference from chance'
    """
    if interval is None or interval[0] is None or interval[1] is None:
        return "too few test subjects to tell"
    low, high = interval
    if not higher_is_better:
        low, high = -high, -low
    if low > 0:
        return f"LCM beats {against}"
    if high < 0:
        return "LCM is below chance" if against == "chance" else f"{against} beats LCM"
    return f"no detectable difference from {against}"


# ----------------------------------------------------------------------------- comparison
@dataclass
class HeldOutPredictions:
    """Everything a comparison needs about one test split (window rows); concatenable across CV folds.

    Attributes
    ----------
    lcm : ndarray (n, P)   LCM reduced logits (continuous BEIs in their units).
    baseline : ndarray (n, P) or None   Baseline "logits" (log-probabilities / values).
    labels : ndarray (n, K)   NaN where missing.
    subjects : ndarray (n,)   ``dataset::subject`` keys.
    scans : ndarray (n,) or None   Scan ids.
    train_mean : ndarray (n, K)   Per window, the training-split mean label of each BEI (chance for MAE).
    """

    lcm: np.ndarray
    baseline: np.ndarray | None
    labels: np.ndarray
    subjects: np.ndarray
    scans: np.ndarray | None
    train_mean: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[HeldOutPredictions]) -> HeldOutPredictions:
        has_baseline = all(p.baseline is not None for p in parts)
        has_scans = all(p.scans is not None for p in parts)
        return cls(
            lcm=np.concatenate([p.lcm for p in parts]),
            baseline=np.concatenate([p.baseline for p in parts]) if has_baseline else None,
            labels=np.concatenate([p.labels for p in parts]),
            subjects=np.concatenate([p.subjects for p in parts]),
            scans=np.concatenate([p.scans for p in parts]) if has_scans else None,
            train_mean=np.concatenate([p.train_mean for p in parts]),
        )


def _model_predictions(bei: dict, logits: np.ndarray, token_slice) -> np.ndarray:
    chunk = np.asarray(logits, dtype=np.float64)[:, token_slice]
    return softmax(chunk) if bei["kind"] == "categorical" else chunk[:, 0]


def _chance_value(metric: str, targets: np.ndarray, chance_prediction: np.ndarray | None) -> float:
    if metric == "balanced_accuracy":
        return 1.0 / max(np.unique(targets).size, 1)
    if metric == "roc_auc":
        return 0.5
    if metric == "pearson_r":
        return 0.0
    return mae(targets, chance_prediction)


def compare(predictions: HeldOutPredictions, beis: list[dict], levels: dict[str, str],
            n_resamples: int = 1000, seed: int = 0) -> list[dict]:
    """LCM vs baseline vs chance per BEI, with bootstrap intervals over subjects.

    Parameters
    ----------
    predictions : HeldOutPredictions
    beis : list of dict
        ``config.beis`` (the order of the label columns and logit slices).
    levels : dict
        :func:`resolve_levels`'s.
    n_resamples, seed : int
        Bootstrap resamples of the test subjects (seeded).

    Returns
    -------
    list of dict
        One per scored BEI: ``bei``, ``kind``, ``level``, ``samples``, ``subjects`` and ``metrics``:
        ``{metric: {"lcm", "baseline", "chance", "difference", "lcm_minus_chance": {"value", "ci"},
        "verdict", "verdict_chance"}}`` (``ci`` a 95% percentile interval, None with fewer than
        ``MIN_SUBJECTS`` test subjects, or fewer than ``MIN_CLASS_SUBJECTS`` of a class of a categorical BEI:
        the verdict is then "too few test subjects to tell").
    """
    from ..configuration_lcm import bei_token_slices

    rows = []
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        known = ~np.isnan(predictions.labels[:, index])
        targets = predictions.labels[known, index]
        if not known.any() or (bei["kind"] == "categorical" and np.unique(targets).size < 2):
            continue  # no labels, or one class (e.g. a declared pseudo-label): nothing to score
        level = levels.get(bei["name"], "subject")
        models = [_model_predictions(bei, predictions.lcm[known], token_slice)]
        if predictions.baseline is not None and np.isfinite(predictions.baseline[known][:, token_slice]).all():
            models.append(_model_predictions(bei, predictions.baseline[known], token_slice))
        stacked = np.stack(models, axis=-1)
        scans = None if predictions.scans is None else predictions.scans[known]
        chance_prediction = predictions.train_mean[known, index]
        values, sample_targets, sample_subjects, chance = level_samples(
            bei["kind"], stacked, targets, predictions.subjects[known], scans, level, chance_prediction
        )
        metrics = CATEGORICAL_METRICS if bei["kind"] == "categorical" else CONTINUOUS_METRICS
        point = {m: _scores(m, values, sample_targets, chance) for m in metrics}
        enough = np.unique(sample_subjects).size >= MIN_SUBJECTS
        if bei["kind"] == "categorical":  # and enough subjects of every class
            per_class = [np.unique(sample_subjects[sample_targets == c]).size for c in np.unique(sample_targets)]
            enough = enough and min(per_class) >= MIN_CLASS_SUBJECTS
        counts = bootstrap_counts(sample_subjects, n_resamples if enough else 0, seed)
        draws = {m: _resampled_scores(m, values, sample_targets, chance, counts) for m in metrics}
        rows.append({
            "bei": bei["name"],
            "kind": bei["kind"],
            "level": level,
            "samples": int(len(sample_targets)),
            "subjects": int(np.unique(sample_subjects).size),
            "metrics": {m: _summary(m, point[m], draws[m], len(models) > 1) for m in metrics},
        })
    return rows


def unscored_beis(labels: np.ndarray, beis: list[dict]) -> dict[str, str]:
    """``{bei: why}`` for the BEIs :func:`compare` leaves out: no test labels, or a single class."""
    out = {}
    for index, bei in enumerate(beis):
        known = labels[~np.isnan(labels[:, index]), index]
        if known.size == 0:
            out[bei["name"]] = "no labels in the test data"
        elif bei["kind"] == "categorical" and np.unique(known).size < 2:
            out[bei["name"]] = "one class only in the test data, e.g. a declared pseudo-label"
    return out


def _scores(metric: str, values: np.ndarray, targets: np.ndarray, chance: np.ndarray) -> list[float]:
    """[lcm, baseline (if any), chance] of one metric on one (re)sample."""
    function = METRIC_FUNCTIONS[metric]
    return [function(targets, values[..., m]) for m in range(values.shape[-1])] + [
        _chance_value(metric, targets, chance)]


def _summary(metric: str, point: list[float], draws: list[list[float]], has_baseline: bool) -> dict:
    draws = np.asarray(draws, dtype=np.float64).reshape(len(draws), len(point))
    higher = metric not in LOWER_IS_BETTER
    out = {
        "lcm": {"value": point[0], "ci": _interval(draws[:, 0])},
        "chance": {"value": point[-1], "ci": _interval(draws[:, -1]) if metric == "mae" else None},
        "lcm_minus_chance": {"value": point[0] - point[-1], "ci": _interval(draws[:, 0] - draws[:, -1])},
        "higher_is_better": higher,
    }
    out["verdict_chance"] = verdict(out["lcm_minus_chance"]["ci"], higher, "chance")
    if has_baseline:
        out["baseline"] = {"value": point[1], "ci": _interval(draws[:, 1])}
        out["difference"] = {"value": point[0] - point[1], "ci": _interval(draws[:, 0] - draws[:, 1])}
        out["verdict"] = verdict(out["difference"]["ci"], higher, "the baseline")
    return out


__all__ = [
    "EVAL_LEVELS",
    "HeldOutPredictions",
    "MIN_CLASS_SUBJECTS",
    "MIN_SUBJECTS",
    "balanced_accuracy",
    "bootstrap_counts",
    "bootstrap_indices",
    "compare",
    "level_samples",
    "resolve_levels",
    "roc_auc",
    "unscored_beis",
    "verdict",
]
