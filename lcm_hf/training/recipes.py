"""Pretraining and finetuning recipes: what `training/pretrain.py`, `training/finetune.py` and the demo run.

- :func:`pretrain`: multitask pretraining over several connectome datasets (union vocabulary, declared
  pseudo-labels, subject-level splits, per-dataset metrics).
- :func:`finetune`: semi-supervised finetuning of a pretrained model on a dataset with new BEIs (`add_beis`),
  optionally with LoRA adapters (`--use_lora`), or linear probing, or training from scratch; same two-stage
  schedule; behind the initialisation guard (:mod:`lcm_hf.training.init_guard`: scratch where the training
  subjects find the pretrained start worse).

Both take the datasets explicitly (``{name: DatasetDict}``, e.g. from
:func:`lcm_hf.training.data.load_connectome_datasets`): the library has no default data.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict
from typing import NamedTuple

import numpy as np
import torch

from ..errors_lcm import LcmInputError
from .arguments import FINETUNE_MODES, LcmDataArguments, LcmFinetuneArguments, LcmModelArguments
from .data import (
    bei_columns,
    build_splits,
    class_aliases,
    declared_pseudo_labels,
    model_format,
    split_parts,
    training_processor,
)
from .small_cohort import apply_small_cohort_policy

logger = logging.getLogger(__name__)


def as_dataset_dicts(datasets) -> dict:
    """``{name: DatasetDict}`` from ``{name: Dataset | DatasetDict}`` (a plain Dataset is the ``train`` split)."""
    import datasets as hfds

    if not datasets:
        raise LcmInputError("expected at least one connectome dataset, got none")
    return {
        name: value if isinstance(value, hfds.DatasetDict) else hfds.DatasetDict({"train": value})
        for name, value in datasets.items()
    }


def _pooled(parts: dict[str, dict]) -> dict:
    """``{dataset name: Dataset}`` of all splits' rows, for the vocabulary's class lists."""
    from datasets import concatenate_datasets

    names = dict.fromkeys(name for named in parts.values() for name in named)
    return {
        name: concatenate_datasets([named[name] for named in parts.values() if name in named]) for name in names
    }


# ----------------------------------------------------------------------------- shared steps
def _trainer(model, training_args, splits, selection_metric="balanced_accuracy"):
    """The run's `LcmTrainer`: checkpoints only where something reads them (`needed_checkpoints`), the training
    rows held in memory when small (`training_rows`)."""
    from ..data import LcmDataCollator
    from .checkpoints import needed_checkpoints
    from .data import training_rows
    from .trainer import LcmTrainer

    return LcmTrainer(
        model=model,
        args=needed_checkpoints(training_args),
        train_dataset=training_rows(splits["train"]),
        eval_dataset=splits["validation"],
        data_collator=LcmDataCollator(beis=model.config.beis),  # label values checked per batch, not per step
        readout_selection_metric=selection_metric,
    )


def _finish(trainer, splits, processor, extra: dict, data_args=None, previous_subjects=None,
            train_subjects=None) -> dict:
    """Calibrate on validation, record the subjects whose labels the model saw (``config.training_subjects``, with
    the starting model's ``previous_subjects``; ``train_subjects`` ``{dataset: ids}`` for a streamed ``train``
    split, given as None), save the model + processor, score the test split, write
    `results.json` (into ``trainer.args.output_dir``; ``split_sizes`` counts the splits given, a ``None`` one
    skipped)."""
    from .calibration import calibrate_trainer
    from .selection import selection_summary
    from .subjects import training_record
    from .trainer import _unwrap

    output_dir = trainer.args.output_dir
    sizes = {k: len(v) for k, v in splits.items() if v is not None}
    extra = {"model_selection": selection_summary(trainer), "split_sizes": sizes, **extra}
    config = _unwrap(trainer.model).config
    if extra.get("small_cohort_policy"):  # no temperature: none fitted here, a starting model's fit other logits
        config.set_temperatures(None)
    if getattr(trainer.args, "calibrate", False) and splits.get("validation") is not None:
        extra["calibration"] = calibrate_trainer(trainer, splits["validation"], output_dir)
    config.training_subjects = training_record(splits, previous_subjects, train_subjects)
    extra["training_subjects"] = {name: {role: len(hashes) for role, hashes in roles.items()}
                                  for name, roles in config.training_subjects["datasets"].items()}
    extra["cv_fold"] = getattr(trainer.args, "cv_fold", None)
    prediction = trainer.predict(splits["test"], metric_key_prefix="test")
    if trainer.args.should_save:
        if hasattr(trainer.model, "peft_config"):  # LoRA: the adapter + finetuned BEIs, not the whole model
            from ..saving_lcm import staged_save
            from .adapters import MERGED_DIR, save_lora_adapter, save_merged_lora

            staged_save(output_dir, lambda folder: save_lora_adapter(trainer.model, folder))
            extra["merged_model"] = save_merged_lora(trainer.model, os.path.join(output_dir, MERGED_DIR), processor)
        else:
            trainer.save_model(output_dir)  # complete or absent: LcmPreTrainedModel.save_pretrained stages it
        processor.save_pretrained(output_dir)
    from .trainer import _unwrap

    results = {
        "test_metrics": prediction.metrics,
        "schedule": trainer.schedule.ran(_unwrap(trainer.model).config),  # what ran (explicit values won)
        "readout_layers": trainer.model.config.readout_layers,
        "stage_history": trainer.schedule.stage_history,
        "selection_history": trainer.schedule.selection_history,
        "log_history": trainer.state.log_history,
        **extra,
    }
    comparison = None
    if data_args is not None:  # LCM vs baseline (unless --baseline false) vs chance, with intervals (report.py)
        from .report import evaluate_run
        from .trainer import numpy_predictions

        results["evaluation"], comparison = evaluate_run(
            _unwrap(trainer.model).config.beis, splits, numpy_predictions(prediction)[0], data_args
        )
    results["best_model_checkpoint"] = trainer.state.best_model_checkpoint
    results["kept_best"] = bool(trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint)
    if trainer.args.should_save:
        from ..atomic import atomic_write_json, write_marker

        atomic_write_json(os.path.join(output_dir, "results.json"), jsonable(results), indent=1)
        write_marker(output_dir, "model")
        from .report import write_run_report

        write_run_report(output_dir, results)
    results["test_comparison_inputs"] = comparison  # evaluation.HeldOutPredictions (not in JSON), for CV pooling
    results["test_predictions"] = prediction  # logits, layer_logits and labels of the test windows (not in JSON)
    results["test_dataset"] = splits["test"]
    return results


def jsonable(value):
    """`value` with numpy scalars as Python numbers and non-finite floats as None (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return jsonable(value.item())
    return value


# ----------------------------------------------------------------------------- pretraining
def pretrain_model(num_rois: int, vocabulary, model_args: LcmModelArguments, seed: int):
    """A freshly initialised `LcmForBeiPrediction` (seeded) of `model_args`' size for `vocabulary`'s BEIs."""
    from ..configuration_lcm import LcmConfig
    from ..modeling_lcm import LcmForBeiPrediction

    common = dict(
        num_rois=num_rois,
        beis=vocabulary.to_config(),
        dropout=model_args.dropout,
        attention_dropout=model_args.attention_dropout,
        fc_norm=model_args.fc_norm,
    )
    if model_args.readout_policy is not None:  # else the config's default (its one home)
        common["readout_policy"] = model_args.readout_policy
    if model_args.preset:
        config = LcmConfig.from_preset(model_args.preset, **common)
    else:
        config = LcmConfig(
            hidden_size=model_args.hidden_size,
            num_hidden_layers=model_args.num_hidden_layers,
            num_attention_heads=model_args.num_attention_heads,
            intermediate_size=model_args.intermediate_size,
            **common,
        )
    torch.manual_seed(seed)
    return LcmForBeiPrediction(config)


def pretrain(
    datasets: dict,
    data_args: LcmDataArguments,
    model_args: LcmModelArguments,
    training_args,
    resume_from_checkpoint=None,
) -> dict:
    """Multitask pretraining over several datasets.

    Parameters
    ----------
    datasets : dict
        ``{name: DatasetDict | Dataset}`` connectome datasets (published splits are used as given).
    data_args, model_args, training_args
        The script's options (:mod:`lcm_hf.training.arguments`).
    resume_from_checkpoint : str or bool, optional
        A checkpoint folder, or True for the newest one in ``training_args.output_dir``.

    Returns
    -------
    dict
        The results (also in ``results.json``): test metrics, readout layers, stage and selection history.
    """
    from ..data import union_vocabulary

    datasets = as_dataset_dicts(datasets)
    categorical, continuous = bei_columns(data_args)
    pseudo = declared_pseudo_labels(data_args)
    parts = split_parts(datasets, data_args)
    vocabulary = union_vocabulary(
        _pooled(parts), categorical, continuous, pseudo, data_args.standardize_continuous,
        class_aliases=class_aliases(data_args),
    )
    processor = training_processor(parts, vocabulary, data_args)  # windows + FC of every split (group kinds fitted)
    splits = build_splits(parts, vocabulary, data_args, pseudo, processor)
    splits, training_args, policy = apply_small_cohort_policy(splits, training_args, from_scratch=True)
    num_rois = splits["train"][0]["connectivity"].shape[-1]
    model = pretrain_model(num_rois, vocabulary, model_args, training_args.seed)
    trainer = _trainer(model, training_args, splits, selection_metric=model_args.readout_selection_metric)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return _finish(
        trainer,
        splits,
        processor,
        {
            "datasets": list(datasets),
            "data_args": asdict(data_args),
            "small_cohort_policy": policy,
        },
        data_args=data_args,
    )


# ----------------------------------------------------------------------------- finetuning
def confident_predictions(model, dataset, vocabulary, beis: list[str], threshold: float, batch_size: int = 64):
    """Labels (n, K) of `vocabulary` holding the pretrained `model`'s predictions for `beis` where their
    probability is >= `threshold`, NaN elsewhere."""
    from ..data import LcmDataCollator

    collate = LcmDataCollator()
    labels = np.full((len(dataset), len(vocabulary.names)), np.nan, dtype=np.float32)
    model.eval()
    slices = dict(zip(model.config.bei_names, model.config.bei_token_slices()))
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            logits = model(connectivity=batch["connectivity"]).logits  # (B, P)
            for name in beis:
                probabilities = logits[:, slices[name]].softmax(-1)  # (B, C)
                score, index = probabilities.max(-1)
                column = vocabulary.names.index(name)
                values = torch.where(score >= threshold, index.float(), torch.tensor(float("nan")))
                labels[start : start + len(values), column] = values.numpy()
    return labels


def finetune_vocabulary(parts: dict, old_vocabulary, data_args, new_beis: list[str] | None = None):
    """The pretrained vocabulary extended with the finetuning data's new BEIs, and the declared pseudo-labels.

    `new_beis` (``--new_beis``): the columns that become new BEIs (added to the categorical columns); default:
    every requested column the pretrained vocabulary lacks.
    """
    from ..data import union_vocabulary

    categorical, continuous = (
        bei_columns(data_args) if (data_args.categorical_columns or data_args.continuous_columns) else ([], [])
    )
    if new_beis:
        known = [name for name in new_beis if name in old_vocabulary.names]
        if known:
            raise LcmInputError(f"--new_beis: expected BEIs the pretrained model lacks, got {known} (already in it)")
        categorical += [name for name in new_beis if name not in categorical + continuous]
    if not categorical and not continuous:
        raise LcmInputError("expected BEI columns: pass --categorical_columns / --continuous_columns or --new_beis")
    pseudo = declared_pseudo_labels(data_args)
    data_vocabulary = union_vocabulary(
        _pooled(parts), categorical, continuous, pseudo, data_args.standardize_continuous,
        class_aliases=class_aliases(data_args),
    )
    additions = [bei for bei in data_vocabulary.to_config() if bei["name"] not in old_vocabulary.names]
    if new_beis:
        missing = [name for name in new_beis if name not in [bei["name"] for bei in additions]]
        if missing:
            raise LcmInputError(f"--new_beis: expected columns with labels in the finetuning data, got none for {missing}")
        additions = [bei for bei in additions if bei["name"] in new_beis]
    return old_vocabulary.extend(additions), pseudo


class FinetuningData(NamedTuple):
    """The finetuning data of :func:`prepare_finetuning_data`: shared by several finetuning modes (the demo)."""

    vocabulary: object  # BeiVocabulary: the pretrained one extended with the new BEIs
    splits: dict  # {"train", "validation", "test"} windows with connectivity and labels
    processor: object  # LcmProcessor: the preprocessing contract of the finetuning data


def prepare_finetuning_data(datasets: dict, data_args: LcmDataArguments, model_name_or_path: str,
                            new_beis: list[str] | None = None) -> FinetuningData:
    """The pretrained vocabulary extended with the finetuning data's new BEIs, the windowed subject-level splits
    labelled with it (true labels + declared pseudo-labels), and the processor of that preprocessing."""
    from ..processing_lcm import LcmProcessor

    old_vocabulary = LcmProcessor.from_pretrained(model_name_or_path).vocabulary
    parts = split_parts(as_dataset_dicts(datasets), data_args)
    vocabulary, pseudo = finetune_vocabulary(parts, old_vocabulary, data_args, new_beis)
    processor = training_processor(parts, vocabulary, data_args)
    return FinetuningData(vocabulary, build_splits(parts, vocabulary, data_args, pseudo, processor), processor)


def check_finetune_arguments(finetune_args: LcmFinetuneArguments) -> None:
    """Raise ``ValueError`` naming the flag for a mode / LoRA / model folder combination `finetune` cannot run."""
    if finetune_args.mode not in FINETUNE_MODES:
        raise LcmInputError(f"--mode: expected one of {list(FINETUNE_MODES)}, got {finetune_args.mode!r}")
    if finetune_args.use_lora and finetune_args.mode != "semi_supervised":
        raise LcmInputError(f"--use_lora: expected --mode semi_supervised, got --mode {finetune_args.mode}")
    if not finetune_args.model_name_or_path:
        raise LcmInputError("--model_name_or_path: expected the pretrained model + processor folder, got none")


def finetuning_model(finetune_args: LcmFinetuneArguments, vocabulary, splits: dict, seed: int,
                     old_vocabulary=None) -> tuple:
    """The model :func:`finetune` trains for `finetune_args` (mode, LoRA, pseudo-labels), before training.

    Parameters
    ----------
    finetune_args : LcmFinetuneArguments
        ``model_name_or_path`` is the pretrained model + processor folder.
    vocabulary : BeiVocabulary
        The pretrained vocabulary extended with the new BEIs (:func:`prepare_finetuning_data`).
    splits : dict
        ``{"train", "validation", "test"}`` labelled windows (:func:`prepare_finetuning_data`).
    seed : int
        Initialises the new BEI tokens (or the whole model for ``scratch``).
    old_vocabulary : BeiVocabulary, optional
        The pretrained vocabulary (default: read from ``model_name_or_path``).

    Returns
    -------
    (model, splits, new_names, trainable)
        The model (a `peft.PeftModel` with LoRA), the splits (the training split with confident pseudo-labels
        when ``confident_pseudo_label_threshold`` is set in ``semi_supervised`` mode), the new BEIs' names and the
        names of the trainable parameters (None: all).
    """
    from ..configuration_lcm import LcmConfig
    from ..data import add_labels
    from ..modeling_lcm import LcmForBeiPrediction
    from ..processing_lcm import LcmProcessor
    from .adapters import freeze_for_linear_probe

    check_finetune_arguments(finetune_args)
    pretrained = LcmForBeiPrediction.from_pretrained(finetune_args.model_name_or_path)
    if old_vocabulary is None:
        old_vocabulary = LcmProcessor.from_pretrained(finetune_args.model_name_or_path).vocabulary
    splits = dict(splits)
    new_names = [name for name in vocabulary.names if name not in old_vocabulary.names]

    if finetune_args.confident_pseudo_label_threshold is not None and finetune_args.mode == "semi_supervised":
        missing = [n for n in old_vocabulary.names if old_vocabulary[n]["kind"] == "categorical"]
        extra = confident_predictions(
            pretrained, splits["train"], vocabulary, missing, finetune_args.confident_pseudo_label_threshold
        )
        splits["train"] = model_format(add_labels(splits["train"], vocabulary, fill=extra))

    if finetune_args.mode == "scratch":
        config = LcmConfig(**{**pretrained.config.to_dict(), "beis": vocabulary.to_config(), "readout_layers": None})
        torch.manual_seed(seed)
        model = LcmForBeiPrediction(config)
    else:
        model = pretrained
        torch.manual_seed(seed)
        model.add_beis([bei for bei in vocabulary.to_config() if bei["name"] in new_names])
    # The pretrained temperatures were fitted to the pretrained logits, which finetuning changes: dropped, not
    # inherited; `--calibrate` (the default) fits new ones on the validation split in `_finish`.
    model.config.set_temperatures(None)
    if finetune_args.readout_policy is not None:  # explicit wins; else the pretrained config's (recorded there)
        from ..configuration_lcm import READOUT_POLICIES

        if finetune_args.readout_policy not in READOUT_POLICIES:
            raise LcmInputError(
                f"--readout_policy: expected one of {list(READOUT_POLICIES)}, got {finetune_args.readout_policy!r}"
            )
        model.config.readout_policy = finetune_args.readout_policy
    trainable = None
    if finetune_args.mode == "linear_probe":
        trainable = freeze_for_linear_probe(model, new_names)
    if finetune_args.use_lora:
        from .adapters import apply_lora

        model = apply_lora(
            model, r=finetune_args.lora_r, lora_alpha=finetune_args.lora_alpha, lora_dropout=finetune_args.lora_dropout
        )
        trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    return model, splits, new_names, trainable


def finetuning_arguments(finetune_args: LcmFinetuneArguments, training_args):
    """The training arguments a finetuning mode trains with: a linear probe's without weight decay (its frozen
    embedding rows must stay as pretrained; decay would shrink them), a copy; the others' as given."""
    if finetune_args.mode != "linear_probe" or not training_args.weight_decay:
        return training_args
    import copy

    training_args = copy.copy(training_args)
    training_args.weight_decay = 0.0
    return training_args


def guarded_finetuning_model(finetune_args: LcmFinetuneArguments, vocabulary, splits: dict, training_args,
                             old_vocabulary=None) -> tuple:
    """:func:`finetuning_model` after the initialisation guard (:mod:`lcm_hf.training.init_guard`): the
    requested pretrained start, or the same architecture from scratch where an inner subject-grouped K-fold on
    the training subjects (``train`` + ``validation``; never ``test``) finds scratch better
    (``finetune_args.init_guard_folds``, 0: off). The guard's one-line sentence is printed.

    Returns
    -------
    (model, splits, new_names, trainable, guard)
        As :func:`finetuning_model`, and the guard's record (``guard["choice"]``: ``"pretrained"``,
        ``"scratch"`` or None where it did not run; ``guard["reason"]``).
    """
    from ..processing_lcm import LcmProcessor
    from .init_guard import choose_initialisation, guard_sentence

    if old_vocabulary is None:
        old_vocabulary = LcmProcessor.from_pretrained(finetune_args.model_name_or_path).vocabulary
    new_names = [name for name in vocabulary.names if name not in old_vocabulary.names]
    chosen, guard = choose_initialisation(
        finetune_args, vocabulary, splits, training_args, new_names, folds=finetune_args.init_guard_folds,
        build_model=finetuning_model,
    )
    if getattr(training_args, "should_log", True):
        print(guard_sentence(guard), flush=True)
    model, splits, new_names, trainable = finetuning_model(
        chosen, vocabulary, splits, training_args.seed, old_vocabulary
    )
    return model, splits, new_names, trainable, guard


def finetune(
    datasets: dict | None,
    data_args: LcmDataArguments,
    finetune_args: LcmFinetuneArguments,
    training_args,
    prepared=None,
    resume_from_checkpoint=None,
) -> dict:
    """Finetune a pretrained model on a dataset with new BEIs (see `LcmFinetuneArguments.mode`).

    `datasets`: ``{name: DatasetDict | Dataset}``; `prepared` (optional) is :func:`prepare_finetuning_data`'s
    `FinetuningData` instead, so several modes can be compared on one split (the demo does).
    A pretrained start goes through the initialisation guard first (:func:`guarded_finetuning_model`,
    ``finetune_args.init_guard_folds``): where an inner K-fold on the training subjects finds the same model
    from scratch better, scratch is trained (``results["init"]``, ``results["init_guard"]``, one line printed).
    Returns the results dict (also in `results.json`).
    """
    from ..configuration_lcm import LcmConfig
    from ..processing_lcm import LcmProcessor
    from .init_guard import guard_sentence
    from .subjects import check_subject_overlap, optimistic_sentence

    check_finetune_arguments(finetune_args)
    vocabulary, splits, processor = prepared or prepare_finetuning_data(
        datasets, data_args, finetune_args.model_name_or_path, finetune_args.new_beis
    )
    training_args = finetuning_arguments(finetune_args, training_args)
    splits, training_args, policy = apply_small_cohort_policy(dict(splits), training_args)
    previous = None  # scratch: the starting model's weights (and what they saw) are not used
    overlap = None
    if finetune_args.mode != "scratch":
        previous = getattr(LcmConfig.from_pretrained(finetune_args.model_name_or_path), "training_subjects", None)
        overlap = check_subject_overlap(previous, splits, getattr(finetune_args, "allow_subject_overlap", False))
    old_vocabulary = LcmProcessor.from_pretrained(finetune_args.model_name_or_path).vocabulary
    model, splits, new_names, trainable, guard = guarded_finetuning_model(
        finetune_args, vocabulary, splits, training_args, old_vocabulary
    )
    optimistic = optimistic_sentence(overlap)
    if guard["choice"] == "scratch":  # the starting model's weights (and what they saw) are not used
        previous, optimistic = None, None  # `subject_overlap` still describes the start that was checked
    trainer = _trainer(model, training_args, splits)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return _finish(
        trainer,
        splits,
        processor,
        {
            "mode": finetune_args.mode,
            "init": guard["choice"] or ("scratch" if finetune_args.mode == "scratch" else "pretrained"),
            "init_guard": guard,
            "init_guard_sentence": guard_sentence(guard),
            "lora": _lora_summary(model) if hasattr(model, "peft_config") else None,
            "new_beis": new_names,
            "trainable": trainable,
            "small_cohort_policy": policy,
            "subject_overlap": overlap,
            "optimistic": optimistic,
        },
        data_args=data_args,
        previous_subjects=previous,
    )


def _lora_summary(peft_model) -> dict:
    from .adapters import trainable_parameters

    config = peft_model.peft_config["default"]
    trainable, total = trainable_parameters(peft_model)
    return {"r": config.r, "lora_alpha": config.lora_alpha, "trainable_parameters": trainable, "parameters": total}


__all__ = [
    "FinetuningData",
    "as_dataset_dicts",
    "confident_predictions",
    "check_finetune_arguments",
    "finetune",
    "finetune_vocabulary",
    "finetuning_arguments",
    "finetuning_model",
    "guarded_finetuning_model",
    "jsonable",
    "prepare_finetuning_data",
    "pretrain",
    "pretrain_model",
]
