"""Temperature scaling of categorical BEIs, fitted on the validation split after training.

One temperature T_k > 0 per categorical BEI minimises the negative log-likelihood of softmax(logits / T_k)
on the **validation windows** (the model's unit of prediction; a subject's probability is the mean of its
windows' calibrated probabilities, as `LcmProcessor.post_process` computes it). T does not change the
argmax of a window, so window accuracy and ROC-AUC are unchanged; it only makes the probabilities honest
(an over-confident model gets T > 1). The temperatures go into ``config.temperatures`` and are applied by
`logits_to_bei_predictions`, `LcmProcessor.post_process` and the pipeline.

The report gives the expected calibration error (ECE, 15 equal-width confidence bins, top-label) before
and after, at window and subject level, and a reliability diagram (:func:`reliability_diagram`).
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from ..errors_lcm import LcmInputError
from .metrics import group_mean, softmax

logger = logging.getLogger(__name__)

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.01, 100.0)
"""The search interval of :func:`fit_temperature`. A fit that ends at either end did not find an optimum (the
validation windows are separated perfectly, or not at all): :func:`fit_temperatures` drops it with a warning."""
_LOG_BETA_BOUNDS = (-math.log(TEMPERATURE_BOUNDS[1]), -math.log(TEMPERATURE_BOUNDS[0]))  # beta = 1 / T


def at_bound(temperature: float, rtol: float = 1e-3) -> bool:
    """Whether a fitted temperature sits at an end of :data:`TEMPERATURE_BOUNDS` (within ``rtol``)."""
    low, high = TEMPERATURE_BOUNDS
    return temperature <= low * (1 + rtol) or temperature >= high * (1 - rtol)


def _nll(logits: np.ndarray, labels: np.ndarray, beta: float) -> float:
    scaled = logits * beta
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tolerance: float = 1e-4) -> float:
    """The temperature T > 0 minimising the mean NLL of softmax(logits / T).

    Parameters
    ----------
    logits : array (n, C)
    labels : int array (n,), class indices in [0, C)

    Returns
    -------
    float
        T in [0.01, 100]. The NLL is convex in 1/T, so a golden-section search over log(1/T) finds the optimum.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise LcmInputError(f"expected logits (n, C) and labels (n,) with n > 0, got {logits.shape} and {labels.shape}")
    low, high = _LOG_BETA_BOUNDS
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(logits, labels, math.exp(a)), _nll(logits, labels, math.exp(b))
    while high - low > tolerance:
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(logits, labels, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(logits, labels, math.exp(b))
    return float(1.0 / math.exp((low + high) / 2.0))


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Top-label reliability per equal-width confidence bin: ``{"confidence", "accuracy", "count"}`` arrays (bins,)
    (NaN for empty bins)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # (k/B, (k+1)/B] -> k
    count = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: sum over confidence bins of |accuracy - mean confidence| weighted by the bin's share."""
    table = reliability_bins(probabilities, labels, bins)
    used = table["count"] > 0
    if not used.any():
        return float("nan")
    gaps = np.abs(table["accuracy"][used] - table["confidence"][used])
    return float((gaps * table["count"][used]).sum() / table["count"].sum())


def _levels(probabilities, labels, groups):
    """(window probabilities, labels) and, with groups, the subject means."""
    yield "window", probabilities, labels
    if groups is not None:
        _, subject_probabilities = group_mean(probabilities, groups)
        _, subject_labels = group_mean(labels.astype(np.float64), groups)
        yield "subject", subject_probabilities, np.round(subject_labels).astype(int)


def fit_temperatures(logits: np.ndarray, labels: np.ndarray, beis: list[dict], subject_ids=None) -> dict:
    """Fit a temperature per categorical BEI and score ECE before/after.

    Parameters
    ----------
    logits : array (n, P), the validation windows' reduced logits
    labels : array (n, K), NaN where missing
    beis : the config's BEIs
    subject_ids : sequence (n,), optional, for subject-level ECE

    Returns
    -------
    dict
        ``{"temperatures": {bei: T}, "ece": {bei: {"window": {"before", "after"}, "subject": {...}}},
        "reliability": {bei: {level: {"before": bins, "after": bins}}}, "windows": {bei: n},
        "dropped_at_bound": {bei: T}}``. BEIs whose validation labels hold fewer than 2 classes get no
        temperature, nor do those whose fit ends at a search bound (:func:`at_bound`: warned and listed in
        ``dropped_at_bound``, never saved).
    """
    from ..configuration_lcm import bei_token_slices

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    result = {"temperatures": {}, "ece": {}, "reliability": {}, "windows": {}, "dropped_at_bound": {}}
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        known = ~np.isnan(labels[:, index])
        if bei["kind"] != "categorical" or len(np.unique(labels[known, index])) < 2:
            continue
        targets = labels[known, index].astype(int)
        bei_logits = logits[known, token_slice]
        temperature = fit_temperature(bei_logits, targets)
        groups = None if subject_ids is None else np.asarray([str(s) for s in subject_ids])[known]
        name = bei["name"]
        if at_bound(temperature):
            logger.warning(
                f"calibration {name}: the fitted temperature {temperature:.6g} is at the search bound "
                f"{list(TEMPERATURE_BOUNDS)} ({int(known.sum())} validation windows cannot calibrate it): not saved, "
                "scores stay the uncalibrated softmax")
            result["dropped_at_bound"][name] = temperature
            continue
        result["temperatures"][name] = temperature
        result["windows"][name] = int(known.sum())
        result["ece"][name], result["reliability"][name] = {}, {}
        before = _levels(softmax(bei_logits), targets, groups)
        after = _levels(softmax(bei_logits / temperature), targets, groups)
        for (level, p0, y0), (_, p1, y1) in zip(before, after):
            result["ece"][name][level] = {
                "before": expected_calibration_error(p0, y0),
                "after": expected_calibration_error(p1, y1),
            }
            result["reliability"][name][level] = {
                "before": reliability_bins(p0, y0),
                "after": reliability_bins(p1, y1),
            }
    return result


def reliability_diagram(calibration: dict, path: str, level: str = "window") -> str | None:
    """Write a PNG with one reliability panel per calibrated BEI (accuracy vs confidence, before and after).

    Returns the path, or None when no BEI was calibrated. The file is written to a temporary sibling, then renamed.
    """
    names = [name for name in calibration["reliability"] if level in calibration["reliability"][name]]
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="perfect")
        for when, color in (("before", "tab:red"), ("after", "tab:blue")):
            table = calibration["reliability"][name][level][when]
            used = table["count"] > 0
            ece = calibration["ece"][name][level][when]
            label = f"{when} (ECE {ece:.3f})" if when == "before" else (
                f"after, T={calibration['temperatures'][name]:.2f} (ECE {ece:.3f})")
            axis.plot(table["confidence"][used], table["accuracy"][used], marker="o", color=color, label=label)
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top class)", ylabel="accuracy",
                 title=f"{name}: validation {level}s")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp.png"
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    os.replace(temporary, path)
    return path


def calibrate_trainer(trainer, dataset, output_dir: str | None = None) -> dict:
    """Fit the temperatures on `dataset` (the validation split) with the trained model, store them in the
    model config (``config.temperatures``) and, with `output_dir`, write ``figures/calibration.png``.

    Returns the JSON-able summary: ``{"fitted_on": "validation windows", "temperatures", "ece", "figure"}``.
    """
    from .trainer import _unwrap, numpy_predictions

    config = _unwrap(trainer.model).config
    prediction = trainer.predict(dataset, metric_key_prefix="calibration")
    logits, _ = numpy_predictions(prediction)
    columns = getattr(dataset, "column_names", None) or []
    subject_ids = None
    if "subject_id" in columns:
        subject_ids = list(dataset["subject_id"])
        if "dataset" in columns:
            subject_ids = [f"{d}::{s}" for d, s in zip(dataset["dataset"], subject_ids)]
    result = fit_temperatures(logits, prediction.label_ids, config.beis, subject_ids)
    config.set_temperatures(result["temperatures"] or None)
    figure = None
    if output_dir and trainer.args.should_save:
        figure = reliability_diagram(result, os.path.join(output_dir, "figures", "calibration.png"))
    for name, levels in result["ece"].items():
        logger.info(
            f"calibration {name}: T={result['temperatures'][name]:.3f}, validation window ECE "
            f"{levels['window']['before']:.3f} -> {levels['window']['after']:.3f}"
        )
    return {
        "fitted_on": "validation windows (NLL of softmax(logits / T))",
        "ece_bins": ECE_BINS,
        "temperatures": result["temperatures"],
        "ece": result["ece"],
        "windows": result["windows"],
        "dropped_at_bound": result["dropped_at_bound"],
        "figure": figure,
    }


__all__ = [
    "ECE_BINS",
    "TEMPERATURE_BOUNDS",
    "at_bound",
    "calibrate_trainer",
    "expected_calibration_error",
    "fit_temperature",
    "fit_temperatures",
    "reliability_bins",
    "reliability_diagram",
]
