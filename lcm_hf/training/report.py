"""The report of one training run (``report.md`` + the ``evaluation`` entry of ``results.json``): LCM vs an
FC + logistic regression baseline vs chance per BEI, on the same test subjects and level, with bootstrap 95%
intervals over subjects and the paired difference; and what happened to the validation loss.

- :func:`evaluate_run`: after training, the baseline (:func:`lcm_hf.training.baseline.fit_baseline`) on the
  run's own splits and the comparison (:func:`lcm_hf.training.evaluation.compare`).
- :func:`history_sentences`: plain sentences on the validation loss and the checkpoint kept, from
  ``trainer.state.log_history`` and ``trainer.state.best_model_checkpoint``.
- :func:`comparison_lines` / :func:`write_run_report`: the markdown.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from .evaluation import (
    MIN_CLASS_SUBJECTS,
    MIN_SUBJECTS,
    HeldOutPredictions,
    compare,
    resolve_levels,
    unscored_beis,
)

logger = logging.getLogger(__name__)

METRIC_NAMES = {"balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC", "mae": "MAE", "pearson_r": "Pearson r"}


def _labels(dataset) -> np.ndarray:
    from ..data.columns import column_array

    return column_array(dataset, "labels", np.float64)


def _identity(dataset):
    """(``dataset::subject`` keys (n,), scan ids (n,) or None)."""
    from .baseline import subject_keys

    scans = np.asarray([str(s) for s in dataset["scan_id"]]) if "scan_id" in dataset.column_names else None
    return subject_keys(dataset), scans


def split_levels(splits: dict, beis: list[dict], eval_level: str = "auto") -> dict[str, str]:
    """:func:`~lcm_hf.training.evaluation.resolve_levels` over all rows of all splits (so every fold and split
    of one dataset gets the same level)."""
    labels, subjects, scans = [], [], []
    for split in (split for split in splits.values() if split is not None):
        labels.append(_labels(split))
        subject, scan = _identity(split)
        subjects.append(subject)
        scans.append(scan)
    has_scans = all(s is not None for s in scans)
    return resolve_levels(
        np.concatenate(labels), beis, np.concatenate(subjects), eval_level,
        scan_ids=np.concatenate(scans) if has_scans else None,
    )


def evaluate_run(beis: list[dict], splits: dict, lcm_logits: np.ndarray, data_args, seed: int = 0):
    """The baseline and the comparison for one run's test split.

    Parameters
    ----------
    beis : list of dict
        The trained model's ``config.beis``.
    splits : dict
        The run's ``{"train", "validation", "test"}`` labelled window datasets.
    lcm_logits : ndarray (n_test, P)
        The model's reduced test logits (``Trainer.predict``).
    data_args
        ``--eval_level``, ``--baseline``, ``--bootstrap_resamples``, ``--split_seed``.

    Returns
    -------
    (evaluation, HeldOutPredictions)
        ``evaluation`` (JSON-able): ``levels``, ``comparison`` (rows of
        :func:`~lcm_hf.training.evaluation.compare`), ``class_counts`` (subjects per class and split of each
        categorical BEI), ``baseline`` (chosen strengths), ``bootstrap``.
    """
    from .baseline import fit_baseline
    from .stratification import split_class_counts

    seed = getattr(data_args, "split_seed", seed)
    levels = split_levels(splits, beis, getattr(data_args, "eval_level", "auto"))
    logger.info("evaluation level per BEI (--eval_level %s): %s", getattr(data_args, "eval_level", "auto"), levels)
    baseline = fit_baseline(splits, beis, seed) if getattr(data_args, "baseline", True) else None
    test = splits["test"]
    subjects, scans = _identity(test)
    train_labels = _labels(splits["train"])
    with np.errstate(all="ignore"):
        means = np.asarray([
            np.nanmean(train_labels[:, i]) if bei["kind"] == "continuous" and (~np.isnan(train_labels[:, i])).any()
            else np.nan for i, bei in enumerate(beis)
        ])
    predictions = HeldOutPredictions(
        lcm=np.asarray(lcm_logits, dtype=np.float64),
        baseline=None if baseline is None else baseline.logits,
        labels=_labels(test),
        subjects=subjects,
        scans=scans,
        train_mean=np.tile(means, (len(test), 1)),
    )
    if baseline is not None:  # a BEI the baseline could not fit (NaN logits) is compared with chance only
        from ..configuration_lcm import bei_token_slices

        predictions.baseline = predictions.baseline.copy()
        for bei, token_slice in zip(beis, bei_token_slices(beis)):
            if bei["name"] not in baseline.fitted:
                predictions.baseline[:, token_slice] = np.nan
    resamples = getattr(data_args, "bootstrap_resamples", 1000)
    evaluation = {
        "beis": beis,
        "levels": levels,
        "eval_level": getattr(data_args, "eval_level", "auto"),
        "comparison": compare(predictions, beis, levels, resamples, seed),
        "unscored": unscored_beis(predictions.labels, beis),
        "class_counts": split_class_counts(splits, beis),
        "baseline": None if baseline is None else {
            "model": "standardised FC upper triangle + logistic regression (ridge for continuous BEIs)",
            "strengths": baseline.strengths,
            "fitted": baseline.fitted,
        },
        "bootstrap": {"resamples": resamples, "seed": seed, "over": "test subjects"},
    }
    return evaluation, predictions


# ----------------------------------------------------------------------------- training history
def history_sentences(log_history: list[dict], best_model_checkpoint: str | None = None,
                      kept_best: bool = False, metric: str | None = None) -> list[str]:
    """Plain sentences on the validation loss per epoch and on the checkpoint kept.

    Parameters
    ----------
    log_history : list of dict
        ``trainer.state.log_history``.
    best_model_checkpoint : str, optional
        ``trainer.state.best_model_checkpoint``.
    kept_best : bool
        Whether that checkpoint was loaded at the end (``load_best_model_at_end``).
    metric : str, optional
        The validation metric the checkpoint was selected on (``args.metric_for_best_model``).
    """
    losses = [(entry.get("epoch"), entry["eval_loss"]) for entry in log_history
              if "eval_loss" in entry and entry["eval_loss"] is not None and math.isfinite(entry["eval_loss"])]
    sentences = []
    if not losses:
        sentences.append("No validation loss was logged.")
    else:
        best_epoch, best = min(losses, key=lambda pair: pair[1])
        last_epoch, last = losses[-1]
        if last > best + 1e-9:
            sentences.append(
                f"Validation loss rose: lowest at epoch {_epoch(best_epoch)} ({best:.3f}), {last:.3f} at the last "
                f"evaluation (epoch {_epoch(last_epoch)}); a rising validation loss means the model fits the training "
                "subjects better than new ones."
            )
        else:
            sentences.append(f"Validation loss did not rise: lowest at the last evaluation (epoch "
                             f"{_epoch(last_epoch)}, {last:.3f}).")
    if kept_best and best_model_checkpoint:
        step = os.path.basename(os.path.normpath(best_model_checkpoint))
        epoch = next((entry.get("epoch") for entry in log_history if "eval_loss" in entry
                      and f"checkpoint-{entry.get('step')}" == step), None)
        where = f" (epoch {_epoch(epoch)})" if epoch is not None else ""
        on = f", selected on the validation {metric}" if metric else ""
        sentences.append(f"The model kept is the best validation checkpoint, `{step}`{where}{on}.")
    else:
        last_epoch = losses[-1][0] if losses else None
        where = f" (epoch {_epoch(last_epoch)})" if last_epoch is not None else ""
        sentences.append(f"The model kept is the one at the end of training{where}, not a selected checkpoint.")
    return sentences


def _epoch(epoch) -> str:
    return "?" if epoch is None else f"{epoch:g}"


# ----------------------------------------------------------------------------- markdown
def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def _with_ci(entry) -> str:
    if not entry:
        return "n/a"
    ci = entry.get("ci")
    if not ci or ci[0] is None:
        return _fmt(entry.get("value"))
    return f"{_fmt(entry.get('value'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def comparison_lines(rows: list[dict], verdicts: bool = True, intervals: bool = True) -> list[str]:
    """A markdown table of :func:`~lcm_hf.training.evaluation.compare` rows (one line per BEI and metric);
    ``verdicts=False`` / ``intervals=False`` leave out the verdict columns / the intervals (a CV fold's table)."""
    show = _with_ci if intervals else (lambda entry: _fmt((entry or {}).get("value")))
    ci = " [95% CI]" if intervals else ""
    header = (f"| BEI | level (samples, subjects) | metric | LCM{ci} | baseline{ci} | chance | LCM - baseline{ci} |"
              + (" LCM vs baseline | LCM vs chance |" if verdicts else ""))
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        for metric, entry in row["metrics"].items():
            arrow = "" if entry.get("higher_is_better", True) else " (lower is better)"
            line = (
                f"| {row['bei']} | {row['level']} ({row['samples']}, {row['subjects']}) | "
                f"{METRIC_NAMES.get(metric, metric)}{arrow} | {show(entry['lcm'])} | "
                f"{show(entry.get('baseline'))} | {_fmt(entry['chance']['value'])} | "
                f"{show(entry.get('difference'))} |"
            )
            if verdicts:
                line += f" {entry.get('verdict', 'no baseline')} | {entry['verdict_chance']} |"
            lines.append(line)
    return lines


def level_sentence(levels: dict[str, str], eval_level: str = "auto") -> str:
    """Which level each BEI was scored at, and why (the reason matches the levels chosen)."""
    if not levels:
        return "No BEI could be scored."
    scan = sorted(name for name, level in levels.items() if level == "scan")
    subject = sorted(name for name, level in levels.items() if level == "subject")
    if eval_level != "auto":
        why = f"--eval_level {eval_level}"
    elif scan and subject:
        why = (f"chosen automatically: {', '.join(scan)} vary within a subject, so they are scored per scan; the "
               "others are constant within each subject")
    elif scan:
        why = "chosen automatically: these labels vary within a subject"
    else:
        why = "chosen automatically: these labels are constant within each subject"
    parts = []
    if subject:
        parts.append(f"one prediction per subject (its windows averaged) for {', '.join(subject)}")
    if scan:
        parts.append(f"one prediction per scan (its windows averaged) for {', '.join(scan)}")
    return f"Scored with {'; '.join(parts)} ({why})."


def unscored_lines(unscored: dict[str, str]) -> list[str]:
    """One line per BEI not scored, with the reason (instead of a blank row or panel)."""
    if not unscored:
        return []
    return ["Not scored: " + "; ".join(f"`{name}` ({why})" for name, why in unscored.items()) + ".", ""]


def explanation_lines() -> list[str]:
    return [
        "Intervals are 95% percentile bootstrap intervals over test subjects (subjects resampled with replacement, "
        "with all their samples); the difference is paired (both models on the same resampled subjects). "
        "\"Beats\" is written only when the interval of the difference excludes 0; otherwise the report says "
        "\"no detectable difference\", which is not evidence that the two are equal. Chance: balanced accuracy "
        "1/C, ROC-AUC 0.5, Pearson r 0, MAE of predicting the training mean. With fewer than "
        f"{MIN_SUBJECTS} test subjects, or fewer than {MIN_CLASS_SUBJECTS} of a class, no interval is given and no "
        "verdict is drawn.",
    ]


def schedule_sentences(schedule: dict | None) -> list[str]:
    """One line saying which readout schedule ran (``results["schedule"]``, `LcmReadoutScheduleCallback.ran`)."""
    if not schedule:
        return []
    if schedule.get("momentum_steps") is not None:
        stage_1 = f"{schedule['momentum_steps']} steps"
    else:
        stage_1 = f"{schedule.get('momentum_epochs')} epochs"
    line = (f"Readout schedule: policy `{schedule.get('readout_policy')}`, stage 1 (mean over layers) {stage_1} "
            f"(from {schedule.get('momentum_from')})")
    if schedule.get("selection_metric"):
        line += f", layers selected on validation {schedule['selection_metric']}"
    return ["", line + "."]


def notice_lines(results: dict) -> list[str]:
    """The lines a reader must see first: scores made optimistic by a starting model that saw test subjects
    (``--allow_subject_overlap``), the small-cohort policy, the initialisation guard's choice, temperatures dropped at an optimiser bound."""
    lines = []
    if results.get("optimistic"):
        lines.append(f"**{results['optimistic']}** (--allow_subject_overlap): every score below is optimistic.")
    if results.get("small_cohort_policy"):
        lines.append(results["small_cohort_policy"])
    if results.get("init_guard_sentence"):
        lines.append(results["init_guard_sentence"])
    dropped = (results.get("calibration") or {}).get("dropped_at_bound") or {}
    if dropped:
        lines.append("No temperature saved for " + ", ".join(f"{name} (fitted T = {t:.4g}, at the search bound)"
                                                             for name, t in dropped.items())
                     + ": the validation split cannot calibrate it; scores are the uncalibrated softmax.")
    return lines + ([""] if lines else [])


def write_run_report(output_dir: str, results: dict, title: str = "LCM run report") -> str:
    """Write ``report.md`` in ``output_dir`` from a recipe's results (``evaluation``, ``log_history``...)."""
    from .stratification import class_count_lines, too_few_lines

    evaluation = results.get("evaluation") or {}
    lines = [f"# {title}", ""] + notice_lines(results)
    lines += history_sentences(
        results.get("log_history") or [], results.get("best_model_checkpoint"), bool(results.get("kept_best")),
        (results.get("model_selection") or {}).get("metric"),
    )
    lines += schedule_sentences(results.get("schedule"))
    lines.append("")
    if evaluation:
        scored = {row["bei"]: row["level"] for row in evaluation["comparison"]}
        lines += ["## Test split: LCM vs baseline vs chance", "",
                  level_sentence(scored, evaluation.get("eval_level", "auto")), ""]
        counts = evaluation.get("class_counts") or {}
        lines += class_count_lines(counts) + too_few_lines(counts)
        if results.get("cv_fold") is None:
            lines += comparison_lines(evaluation["comparison"]) + [""] + explanation_lines() + [""]
        else:  # one fold's handful of test subjects decides nothing: the verdicts are across folds
            lines += comparison_lines(evaluation["comparison"], verdicts=False) + [""]
            lines += [f"Fold {results['cv_fold']} of a cross-validation: no verdict from one fold's test subjects; "
                      "the verdicts, across folds, are in `../cv_report.md`.", ""]
        lines += unscored_lines(evaluation.get("unscored") or {})
    lines += ["All metrics (per layer, per dataset, window/scan/subject level) are in `results.json`.", ""]
    from ..atomic import atomic_write_text

    path = os.path.join(output_dir, "report.md")
    atomic_write_text(path, "\n".join(lines))
    return path


__all__ = [
    "comparison_lines",
    "evaluate_run",
    "history_sentences",
    "level_sentence",
    "schedule_sentences",
    "notice_lines",
    "split_levels",
    "unscored_lines",
    "write_run_report",
]
