"""K-fold subject-grouped cross-validation for `training/pretrain.py` and `training/finetune.py` (``--cv_folds K``).

What is folded (per dataset, then fold k of every dataset is trained together):

- the dataset's ``train`` rows plus its published ``validation`` rows (a fold carves its own validation split);
- a published ``test`` split, and rows whose ``split`` column says ``test``, are **left out**: a published test
  split is never re-split nor trained on; it is named in the report (score it with a run without
  ``--cv_folds``).

Fold k: its test subjects are the k-th of K groups (``grouped_kfold``: grouped by ``--group_by``, shuffled with
``--split_seed``, stratified on ``--stratify_column``, by default on the first categorical target
(:func:`lcm_hf.training.stratification.stratify_columns`), the columns joined into one stratum); its
validation split is ``--validation_fraction`` of the remaining groups (grouped and stratified the same way,
seed ``split_seed + k``); the rest trains. Each fold runs the recipe unchanged (the fold's splits are handed to
it as published splits) into ``<output_dir>/fold-<k>``, writing its own ``results.json`` and ``report.md``.

``<output_dir>/cv_results.json`` and ``cv_report.md`` then hold, per BEI: the out-of-fold predictions of all
folds pooled (every subject scored once, by the fold that did not train on it) with bootstrap intervals over all
subjects, LCM vs baseline vs chance and the paired difference; the per-fold numbers; and their mean +/- sd.

A finetuning CV reuses one pretrained model in every fold: each fold checks its test subjects against the ones
whose labels that model saw (:mod:`lcm_hf.training.subjects`) and refuses an overlap, unless
``--allow_subject_overlap`` (then ``cv_report.md`` says "optimistic: the starting model saw N of M test subjects").
The verdicts of ``cv_report.md`` come from the per-fold values (:mod:`lcm_hf.training.cv_report`), not from the
pooled predictions.

Folds are never resumed (``--resume_from_checkpoint`` is refused with ``--cv_folds``), so a fold writes only the
checkpoints its model selection reads: none under the small-cohort policy (the last step is kept), only the
improving evaluations when the best epoch is kept (:func:`lcm_hf.training.checkpoints.needed_checkpoints`).
With the small training splits batched from memory and the loaded libraries left out of the folds' garbage
collections, ``pretrain.py --cv_folds 5`` on 48 subjects takes about 1.4-1.5 times a plain torch loop doing the same
optimizer steps, report, baseline and intervals included (``benchmarks/bench_cv_speed.py``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Callable

import numpy as np

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

STRATUM = "_cv_stratum"


def _with_stratum(dataset, columns: list[str]):
    present = [c for c in columns if c in dataset.column_names]
    if not present:
        return dataset, None
    values = zip(*(dataset[c] for c in present))
    strata = ["|".join("missing" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row)
              for row in values]
    return dataset.add_column(STRATUM, strata), STRATUM


def _pool(dataset_dict) -> tuple[object, int]:
    """(rows to fold, rows left out as a published test split)."""
    from datasets import concatenate_datasets

    parts = [dataset_dict[s] for s in ("train", "validation") if s in dataset_dict]
    held_out = len(dataset_dict["test"]) if "test" in dataset_dict else 0
    pool = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if "split" in pool.column_names:
        values = [str(v) for v in pool["split"]]
        held_out += values.count("test")
        pool = pool.select([i for i, v in enumerate(values) if v != "test"]).remove_columns("split")
    return pool, held_out


def fold_datasets(datasets: dict, data_args) -> tuple[list[dict], dict]:
    """The ``--cv_folds`` folds: ``[{name: DatasetDict(train, validation, test)}] * K`` and a description.

    Parameters
    ----------
    datasets : dict
        ``{name: Dataset | DatasetDict}`` as the recipes take.
    data_args : LcmDataArguments
        ``cv_folds``, ``group_by``, ``split_seed``, ``stratify_column``, ``validation_fraction``.

    Returns
    -------
    (folds, description)
        ``description``: ``group_by``, ``seed``, ``stratified_by`` (and ``stratify_default``: whether those are
        the default first categorical target), ``held_out_test_rows`` per dataset and
        ``subjects`` per fold and split.

    Raises
    ------
    ValueError
        ``cv_folds`` < 2 or above the number of groups of a dataset; a ``validation_fraction`` outside (0, 1).
    """
    from datasets import DatasetDict

    from ..data import grouped_kfold, grouped_split
    from .recipes import as_dataset_dicts
    from .stratification import stratify_columns

    k = data_args.cv_folds
    if not isinstance(k, int) or k < 2:
        raise LcmInputError(f"--cv_folds: expected an integer >= 2, got {k!r}")
    if not 0 < data_args.validation_fraction < 1:
        raise LcmInputError(f"--validation_fraction: expected a fraction in (0, 1), got {data_args.validation_fraction}")
    group_by = getattr(data_args, "group_by", "subject_id")
    seed = data_args.split_seed
    columns, defaulted = stratify_columns(data_args)
    folds = [dict() for _ in range(k)]
    held_out, stratified = {}, {}
    for name, dataset_dict in as_dataset_dicts(datasets).items():
        pool, held_out[name] = _pool(dataset_dict)
        if held_out[name]:
            logger.warning(f"--cv_folds: the published test split of {name!r} ({held_out[name]} rows) is left out")
        stratified[name] = [c for c in columns if c in pool.column_names]
        pool, stratum = _with_stratum(pool, stratified[name])
        for index, fold in enumerate(grouped_kfold(pool, k, group_by=group_by, stratify_by=stratum, seed=seed)):
            train = fold["train"]
            n_groups = len(set(train[group_by]))
            if n_groups < 2:
                raise LcmInputError(f"--cv_folds: expected at least 2 {group_by} groups to train on in fold {index} of "
                                    f"{name!r}, got {n_groups}")
            size = min(max(data_args.validation_fraction, 1.0 / n_groups), (n_groups - 1) / n_groups)
            inner = grouped_split(train, size, 0, group_by=group_by, stratify_by=stratum, seed=seed + index)
            parts = {"train": inner["train"], "validation": inner["test"], "test": fold["test"]}
            if stratum:
                parts = {split: part.remove_columns(stratum) for split, part in parts.items()}
            folds[index][name] = DatasetDict(parts)
    description = {
        "folds": k,
        "group_by": group_by,
        "seed": seed,
        "stratified_by": stratified,
        "stratify_default": defaulted,
        "held_out_test_rows": held_out,
        "subjects": [
            {split: sum(len(set(dd[split]["subject_id"])) for dd in fold.values()) for split in ("train", "validation", "test")}
            for fold in folds
        ],
    }
    return folds, description


@contextlib.contextmanager
def _libraries_out_of_garbage_collection():
    """While the folds train, the objects alive before them (the loaded libraries: some 400,000 objects) are left
    out of garbage collection (`gc.freeze`; back in when the folds are done): every fold's Trainer starts with a
    full collection (accelerate's ``free_memory``) that otherwise walks them all, 0.4 s a fold here."""
    import gc

    if gc.get_freeze_count():  # frozen by the caller: left as it is
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def fold_training_args(training_args, index: int):
    """A copy of the training arguments writing into ``<output_dir>/fold-<index>`` (and ``cv_fold = index``)."""
    args = copy.deepcopy(training_args)
    args.output_dir = os.path.join(training_args.output_dir, f"fold-{index}")
    args.cv_fold = index  # the fold's report.md then draws no verdict (cv_report.md does, across folds)
    return args


def cross_validate(datasets: dict, data_args, training_args, train_fold: Callable[[dict, object], dict]) -> dict:
    """Run ``train_fold(fold_datasets, fold_training_args)`` (a recipe) on every fold and write the CV report.

    Parameters
    ----------
    datasets : dict
        ``{name: Dataset | DatasetDict}``.
    data_args : LcmDataArguments
    training_args : TrainingArguments
        Its ``output_dir`` receives ``fold-<k>/``, ``cv_results.json`` and ``cv_report.md``.
    train_fold : callable
        E.g. ``lambda d, a: pretrain(d, data_args, model_args, a)``; returns the recipe's results.

    Returns
    -------
    dict
        ``cv_results.json``'s content: ``description``, ``levels``, ``pooled`` (comparison rows over all
        out-of-fold predictions), ``folds`` (per fold: comparison rows, test metrics, model selection),
        ``mean_sd`` (per BEI and metric: mean and sd over folds of LCM, baseline, chance, difference).
    """
    from .cv_report import summarise, write_cv_report
    from .evaluation import HeldOutPredictions, compare

    folds, description = fold_datasets(datasets, data_args)
    fold_results = []
    with _libraries_out_of_garbage_collection():
        for index, fold in enumerate(folds):
            logger.info(f"--cv_folds: fold {index + 1}/{len(folds)}: subjects {description['subjects'][index]}")
            fold_results.append(train_fold(fold, fold_training_args(training_args, index)))
    evaluations = [r.get("evaluation") or {} for r in fold_results]
    inputs = [r.get("test_comparison_inputs") for r in fold_results]
    levels, beis = evaluations[0].get("levels", {}), evaluations[0].get("beis")
    pooled = None
    if beis and all(i is not None for i in inputs):
        pooled = compare(HeldOutPredictions.concatenate(inputs), beis, levels,
                         getattr(data_args, "bootstrap_resamples", 1000), data_args.split_seed)
    cv = summarise(description, levels, pooled, fold_results, getattr(data_args, "eval_level", "auto"))
    if training_args.should_save:
        write_cv_report(training_args.output_dir, cv)
    return cv


__all__ = ["cross_validate", "fold_datasets", "fold_training_args"]
