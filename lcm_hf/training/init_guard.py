"""The finetuning guard: start from the pretrained weights only where the training subjects say they help.

A pretrained model helps a new BEI that reads the FC factors its pretraining BEIs used, and can harm one that
reads other factors: ``benchmarks/RESULTS_transfer.md`` (negative control) found every finetuning mode of a
model pretrained on 5k simulated subjects 0.03-0.27 test ROC-AUC below the same model trained from scratch on
40-120 subjects, because the pretrained decoder attends to what the pretraining BEIs needed and a few tens of
optimizer steps do not move it elsewhere. Whether a cohort is of the first or the second kind is not known
before trying, so :func:`choose_initialisation` tries:

- the training subjects only (``train`` and, when present, ``validation``; never ``test``) are split into
  ``folds`` subject-grouped folds, stratified on the first new categorical BEI (a subject's windows stay in
  one fold);
- in every inner fold the requested finetuning (its mode, LoRA and pseudo-labels, built by
  :func:`lcm_hf.training.recipes.finetuning_model`) and the same architecture from scratch train the same
  fixed budget (the run's epochs, learning rate and batch; no evaluation, selection or checkpoint) and are
  scored on the held-out inner fold by the run's selection metric (``mean/subject/roc_auc`` by default);
- scratch is chosen when its mean over the folds is higher than the pretrained start's by more than
  ``margin`` (:data:`DEFAULT_MARGIN`), else the pretrained start (ties keep it).

The choice and its reason are one line (printed, and in ``results.json`` as ``init_guard``). The guard costs
``2 x folds`` short extra trainings; ``--init_guard_folds 0`` turns it off (the requested mode always runs).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile

import numpy as np

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

DEFAULT_FOLDS = 3
"""Inner folds of the guard (``--init_guard_folds``)."""

DEFAULT_MARGIN = 0.0
"""Scratch must beat the pretrained start by more than this (inner mean of the selection metric) to be chosen."""

MIN_SUBJECTS_PER_FOLD = 4
"""Inner folds need at least this many training subjects each; with fewer the guard does not run (said)."""


def scratch_arguments(finetune_args):
    """The finetuning arguments of the scratch alternative: same model folder and new BEIs, ``mode="scratch"``,
    no LoRA, no pseudo-labels (a scratch model has no predictions to trust)."""
    return dataclasses.replace(finetune_args, mode="scratch", use_lora=False, confident_pseudo_label_threshold=None)


def _subjects(dataset) -> list[str]:
    names = dataset["dataset"] if "dataset" in dataset.column_names else [""] * len(dataset)
    return [f"{d}::{s}" for d, s in zip(names, dataset["subject_id"])]


def inner_folds(dataset, beis: list[dict], stratify_names: list[str], folds: int, seed: int) -> list[tuple]:
    """``[(fit window indices, held-out window indices)]``: `folds` subject-grouped folds of `dataset`'s windows,
    stratified on the first of `stratify_names` that is a categorical BEI with labels (a subject's label: its
    first labelled window's; unlabelled subjects form their own stratum). Plain K-fold over subjects where a
    stratum has fewer subjects than folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    subjects = _subjects(dataset)
    order = list(dict.fromkeys(subjects))
    index = {subject: k for k, subject in enumerate(order)}
    strata = np.full(len(order), -1, dtype=np.int64)
    names = [bei["name"] for bei in beis]
    labels = np.stack(dataset.with_format("numpy", columns=["labels"])["labels"]).astype(np.float64)
    for name in stratify_names:
        if name not in names or beis[names.index(name)]["kind"] != "categorical":
            continue
        column = labels[:, names.index(name)]
        if np.isnan(column).all():
            continue
        for subject, value in zip(subjects, column):
            if not np.isnan(value) and strata[index[subject]] < 0:
                strata[index[subject]] = int(value)
        break
    counts = np.unique(strata, return_counts=True)[1]
    if len(counts) > 1 and counts.min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(order)), strata)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(order)))
    subject_of_window = np.array([index[s] for s in subjects])
    out = []
    for _, held_subjects in splitter:
        held = np.isin(subject_of_window, held_subjects)
        out.append((np.flatnonzero(~held), np.flatnonzero(held)))
    return out


def inner_training_args(training_args, output_dir: str):
    """A copy of the run's training arguments for an inner fit: the same budget, learning rate, batch, weight
    decay and schedule, with no evaluation, model selection, early stopping, checkpoint, calibration or logging."""
    from .small_cohort import without_selection

    args = without_selection(training_args)
    args.output_dir = output_dir
    args.save_strategy = "no"
    args.logging_strategy = "no"
    args.report_to = []
    args.disable_tqdm = True
    return args


def _inner_score(finetune_args, vocabulary, fit, held, training_args, seed: int, metric: str,
                 build_model) -> float:
    """Train `finetune_args`' model (``build_model``: :func:`lcm_hf.training.recipes.finetuning_model`) on `fit`,
    return `metric` on `held` (NaN where it cannot be scored)."""
    from ..data import LcmDataCollator
    from .trainer import LcmTrainer

    with tempfile.TemporaryDirectory() as work:
        args = inner_training_args(training_args, work)
        model, splits, _, _ = build_model(
            finetune_args, vocabulary, {"train": fit, "validation": None, "test": held}, seed
        )
        trainer = LcmTrainer(model=model, args=args, train_dataset=splits["train"], eval_dataset=None,
                             data_collator=LcmDataCollator(beis=model.config.beis), layer_metrics=False)
        trainer.train()
        metrics = trainer.evaluate(held, metric_key_prefix="inner")
    value = metrics.get(f"inner_{metric}")
    return float("nan") if value is None else float(value)


def _metric(training_args) -> tuple[str, bool]:
    """(the selection metric the guard scores, whether higher is better): the run's ``metric_for_best_model``
    (``mean/subject/roc_auc`` when it is unset)."""
    metric = getattr(training_args, "metric_for_best_model", None) or "mean/subject/roc_auc"
    metric = metric[len("eval_"):] if metric.startswith("eval_") else metric
    greater = getattr(training_args, "greater_is_better", None)
    if greater is None:
        greater = not metric.endswith("loss")
    return metric, bool(greater)


def choose_initialisation(finetune_args, vocabulary, splits: dict, training_args, new_beis: list[str],
                          folds: int = DEFAULT_FOLDS, margin: float = DEFAULT_MARGIN, *,
                          build_model=None) -> tuple[object, dict]:
    """The finetuning arguments to run (`finetune_args` or their scratch alternative) and the guard's record.

    Parameters
    ----------
    finetune_args : LcmFinetuneArguments
        The requested finetuning (a pretrained start; ``mode="scratch"`` is returned as given).
    vocabulary : BeiVocabulary
        The pretrained vocabulary extended with the new BEIs.
    splits : dict
        ``{"train", "validation", "test"}`` labelled windows; only ``train`` and ``validation`` are read.
    training_args : LcmTrainingArguments
        The run's options: the inner fits train with its budget and learning rate, and score its
        ``metric_for_best_model``.
    new_beis : list of str
        The new BEIs (the first categorical one stratifies the inner folds).
    folds : int
        Inner folds (0 or 1: no guard).
    margin : float
        Scratch is chosen when its inner mean beats the pretrained start's by more than this.
    build_model : callable
        Builds a start's model and splits for an inner fit: :func:`lcm_hf.training.recipes.finetuning_model`
        (passed in by the recipes, which call the guard: no import cycle). Required where the guard trains.

    Returns
    -------
    (finetune_args, record)
        ``record``: ``{"choice": "pretrained" | "scratch" | None, "reason": str, "folds", "metric",
        "pretrained": [per fold], "scratch": [per fold], "subjects"}`` (``choice`` None where the guard did not
        run).
    """
    from datasets import concatenate_datasets

    from .data import model_format

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0:
        raise LcmInputError(f"--init_guard_folds: expected an integer >= 0 (0: no guard), got {folds!r}")
    record = {"choice": None, "folds": folds, "pretrained": [], "scratch": []}
    if finetune_args.mode == "scratch":
        return finetune_args, {**record, "reason": "--mode scratch: no pretrained start to check"}
    if folds < 2:
        return finetune_args, {**record, "reason": "--init_guard_folds 0: the pretrained start is used unchecked"}
    parts = [split for split in (splits.get("train"), splits.get("validation")) if split is not None and len(split)]
    pooled = model_format(concatenate_datasets(parts)) if len(parts) > 1 else parts[0]
    subjects = len(set(_subjects(pooled)))
    record["subjects"] = subjects
    if subjects < folds * MIN_SUBJECTS_PER_FOLD:
        return finetune_args, {**record, "reason": f"{subjects} training subjects, fewer than {folds} inner folds x "
                               f"{MIN_SUBJECTS_PER_FOLD}: the pretrained start is used unchecked"}
    metric, greater = _metric(training_args)
    record["metric"] = metric
    beis = vocabulary.to_config()
    seed = int(getattr(training_args, "seed", 0))
    alternative = scratch_arguments(finetune_args)
    if build_model is None:
        raise TypeError("choose_initialisation: expected build_model (recipes.finetuning_model) to train the inner "
                        "folds, got None")
    for fit_rows, held_rows in inner_folds(pooled, beis, new_beis, folds, seed):
        fit, held = pooled.select(fit_rows), pooled.select(held_rows)
        for key, args in (("pretrained", finetune_args), ("scratch", alternative)):
            record[key].append(_inner_score(args, vocabulary, fit, held, training_args, seed, metric, build_model))
    means = {key: float(np.nanmean(record[key])) if not all(map(math.isnan, record[key])) else float("nan")
             for key in ("pretrained", "scratch")}
    record.update({f"{key}_mean": value for key, value in means.items()})
    sign = 1.0 if greater else -1.0
    gain = sign * (means["scratch"] - means["pretrained"])  # > 0: scratch better
    summary = (f"inner {folds}-fold {metric} on the {subjects} training subjects: pretrained start "
               f"{means['pretrained']:.3f}, scratch {means['scratch']:.3f}")
    if math.isnan(gain) or gain <= margin:
        record.update(choice="pretrained", reason=f"{summary}: scratch is not better, the pretrained start is kept")
        return finetune_args, record
    record.update(choice="scratch", reason=f"{summary}: the pretrained start does not help this cohort, trained "
                  "from scratch (--init_guard_folds 0 to keep it)")
    return alternative, record


def guard_sentence(record: dict) -> str:
    """The one line that says which start the guard chose and why."""
    choice = record.get("choice")
    head = "Initialisation guard" + (f": {choice} start" if choice else ": off")
    return f"{head} ({record['reason']})."


__all__ = ["DEFAULT_FOLDS", "DEFAULT_MARGIN", "MIN_SUBJECTS_PER_FOLD", "choose_initialisation", "guard_sentence",
           "inner_folds", "inner_training_args", "scratch_arguments"]
