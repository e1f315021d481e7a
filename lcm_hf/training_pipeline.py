"""Pretraining and finetuning recipes shared by `training/pretrain.py`, `training/finetune.py` and `lcm-hf demo`.

- `pretrain(data_args, model_args, training_args)`: multitask pretraining over several connectome datasets
  (union vocabulary, declared pseudo-labels, subject-level splits, per-dataset metrics).
- `finetune(data_args, finetune_args, training_args)`: semi-supervised finetuning of a pretrained model on a
  dataset with new BEIs (`add_beis`), optionally with LoRA adapters (`--use_lora`), or linear probing, or
  training from scratch; same two-stage schedule.

The data steps are `lcm_hf.data`'s: `union_vocabulary`, `merge_connectome_datasets` (declared pseudo-labels),
`expand_windows`, `add_connectivity`, `add_labels`, `grouped_split` (by subject) and `LcmDataCollator`.

Every option is a dataclass field, so `HfArgumentParser` reads them from the command line or a JSON/YAML file.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

logger = logging.getLogger(__name__)

FINETUNE_MODES = ("semi_supervised", "linear_probe", "scratch")


# ----------------------------------------------------------------------------- arguments
@dataclass
class LcmDataArguments:
    """Which connectome datasets to use and how to cut them into samples."""

    dataset_dirs: list[str] | None = field(
        default=None,
        metadata={
            "help": "Connectome datasets saved with `save_to_disk` or as parquet folders. Default: the demo cohort."
        },
    )
    categorical_columns: list[str] | None = field(
        default=None, metadata={"help": "Categorical BEI columns (default for the demo cohort: its BEIs)."}
    )
    continuous_columns: list[str] | None = field(default=None, metadata={"help": "Continuous BEI columns."})
    standardize_continuous: bool = field(
        default=True,
        metadata={
            "help": "Predict continuous BEIs as (value - mean) / std of the pooled data (loss weight 1), reported "
            "in their units; --standardize_continuous false trains on raw values with the reference weight 1e-4."
        },
    )
    pseudo_labels: str | None = field(
        default=None,
        metadata={
            "help": 'JSON {dataset: {bei: class}} constants for BEIs a dataset lacks (demo: task="rest").'
        },
    )
    demo_seed: int = field(default=0, metadata={"help": "Seed of the simulated demo cohort."})
    demo_subjects: int | None = field(
        default=None, metadata={"help": "Subjects per demo dataset (default: the cohort's)."}
    )
    demo_datasets: list[str] | None = field(
        default=None, metadata={"help": "Demo datasets to use (default: by stage)."}
    )
    window_size: int = field(default=90, metadata={"help": "Window length in TRs (one window = one sample)."})
    window_stride: int | None = field(
        default=None, metadata={"help": "Step between windows (default: non-overlapping)."}
    )
    validation_fraction: float = field(
        default=0.15, metadata={"help": "Fraction of subjects for validation."}
    )
    test_fraction: float = field(default=0.15, metadata={"help": "Fraction of subjects for the test split."})
    stratify_column: str | None = field(
        default=None, metadata={"help": "Column to stratify subject splits on."}
    )
    split_seed: int = field(default=0, metadata={"help": "Seed of the subject-level splits."})


@dataclass
class LcmModelArguments:
    """The model to pretrain (sizes, readout policy, schedule)."""

    preset: str | None = field(
        default=None, metadata={"help": "small/base/mid/big; overrides the size fields."}
    )
    hidden_size: int = 64
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    attention_dropout: float = 0.1
    fc_norm: str = field(
        default="batchnorm", metadata={"help": "batchnorm (reference) or layernorm (batch-independent)."}
    )
    readout_policy: str = field(default="best_layer", metadata={"help": "max, best_layer, mean or last."})
    momentum_epochs: int = field(default=2, metadata={"help": "Epochs of stage 1 (mean over layers)."})
    readout_selection_metric: str = field(
        default="balanced_accuracy", metadata={"help": "best_layer selection metric."}
    )


@dataclass
class LcmFinetuneArguments:
    """Finetuning a pretrained model on a dataset with new BEIs."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The pretrained model + processor folder."}
    )
    mode: str = field(
        default="semi_supervised", metadata={"help": "semi_supervised, linear_probe or scratch."}
    )
    new_beis: list[str] | None = field(
        default=None, metadata={"help": "Categorical columns of the finetuning data that become new BEIs."}
    )
    confident_pseudo_label_threshold: float | None = field(
        default=None,
        metadata={
            "help": "Also label pretrained BEIs that the data lacks with the pretrained model's predictions whose "
            "probability is at least this (e.g. 0.9). Default: only declared constants."
        },
    )
    readout_policy: str | None = field(
        default=None, metadata={"help": "Override the pretrained readout policy."}
    )
    momentum_epochs: int | None = field(default=None, metadata={"help": "Override the stage-1 length."})
    use_lora: bool = field(
        default=False,
        metadata={
            "help": "semi_supervised with LoRA adapters (peft) on the attention projections: only the adapters, "
            "the BEI tokens, the readout and the FC encoder's norm train; the output folder holds the adapter "
            "(`lcm_hf.lora.load_lora_adapter(pretrained model, output_dir)` reloads it)."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (with --use_lora)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 * lora_r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA path."})


# ----------------------------------------------------------------------------- data
def load_connectome_datasets(data_args: LcmDataArguments, stage: str):
    """{name: Dataset} from `dataset_dirs` (`save_to_disk` folders, or parquet folders as `publish_dataset`
    writes them), or the demo cohort's pretraining / finetuning datasets."""
    import datasets as hfds

    from .data import load_published

    if data_args.dataset_dirs:
        loaded = {}
        for path in data_args.dataset_dirs:
            if os.path.isfile(os.path.join(path, "dataset_info.json")) or os.path.isfile(
                os.path.join(path, "state.json")
            ):
                dataset = hfds.load_from_disk(path)
            else:
                dataset = load_published(path, split="train")
            name = (
                dataset[0]["dataset"]
                if "dataset" in dataset.column_names
                else os.path.basename(path.rstrip("/"))
            )
            loaded[name] = dataset
        return loaded
    from .data.demo import FINETUNE_DATASETS, PRETRAIN_DATASETS, make_demo_cohort

    names = tuple(
        data_args.demo_datasets or (PRETRAIN_DATASETS if stage == "pretrain" else FINETUNE_DATASETS)
    )
    cohort = make_demo_cohort(seed=data_args.demo_seed, n_subjects=data_args.demo_subjects, datasets=names)
    return dict(cohort.items())


def bei_columns(datasets: dict, data_args: LcmDataArguments) -> tuple[list[str], list[str]]:
    """(categorical, continuous) BEI columns: the declared ones, or the demo cohort's."""
    if data_args.categorical_columns or data_args.continuous_columns:
        return list(data_args.categorical_columns or []), list(data_args.continuous_columns or [])
    from .data.demo import DEMO_DATASETS, demo_bei_columns

    categorical, continuous = [], []
    for name in datasets:
        if name not in DEMO_DATASETS:
            raise ValueError(
                f"dataset {name!r} is not a demo dataset: pass --categorical_columns/--continuous_columns"
            )
        columns = demo_bei_columns(name)
        categorical += [c for c in columns["categorical"] if c not in categorical]
        continuous += [c for c in columns["continuous"] if c not in continuous]
    return categorical, continuous


def declared_pseudo_labels(data_args: LcmDataArguments) -> dict[str, dict[str, str]]:
    """`--pseudo_labels` (JSON), else the demo cohort's (`task = rest`) when no `dataset_dirs` are given."""
    if data_args.pseudo_labels:
        return json.loads(data_args.pseudo_labels)
    if data_args.dataset_dirs:
        return {}
    from .data.demo import DEMO_PSEUDO_LABELS

    return DEMO_PSEUDO_LABELS


def _stratify_columns(datasets: dict, data_args: LcmDataArguments) -> list[str]:
    """`dataset` and `--stratify_column` (default for demo datasets: each one's specific BEI)."""
    from .data.demo import DEMO_DATASETS

    if data_args.stratify_column:
        return ["dataset", data_args.stratify_column]
    specific = [DEMO_DATASETS[name]["bei"][0] for name in datasets if name in DEMO_DATASETS]
    return ["dataset", *dict.fromkeys(specific)]


def build_splits(datasets: dict, vocabulary, data_args: LcmDataArguments, pseudo_labels: dict) -> dict:
    """{"train", "validation", "test"}: one row per window (`expand_windows`, whose rows keep `subject_id`,
    `dataset` and the phenotypes) with `connectivity` and `labels` (declared pseudo-labels filled in), split
    by subject (`grouped_split`, stratified on `dataset` and the stratify column: no subject in two splits).
    Rows come as numpy `connectivity` / `labels` for `LcmDataCollator`, the other columns as Python values."""
    from .data import add_connectivity, add_labels, expand_windows, grouped_split, merge_connectome_datasets

    pseudo_labels = {
        name: {bei: value for bei, value in declared.items() if bei in vocabulary}
        for name, declared in pseudo_labels.items()
    }
    merged, _ = merge_connectome_datasets(datasets, vocabulary, pseudo_labels)
    if "timeseries" in merged.column_names:
        merged = expand_windows(merged, data_args.window_size, data_args.window_stride, drop_last=True)
    samples = add_labels(add_connectivity(merged), vocabulary)
    splits = grouped_split(
        samples,
        data_args.test_fraction,
        data_args.validation_fraction,
        stratify_by=[c for c in _stratify_columns(datasets, data_args) if c in samples.column_names],
        seed=data_args.split_seed,
    )
    return {name: _model_format(split) for name, split in splits.items()}


def _model_format(dataset):
    return dataset.with_format("numpy", columns=["connectivity", "labels"], output_all_columns=True)


# ----------------------------------------------------------------------------- recipes
def _trainer(model, training_args, splits, selection_metric="balanced_accuracy"):
    from .data import LcmDataCollator
    from .trainer_lcm import LcmTrainer

    return LcmTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=LcmDataCollator(),
        readout_selection_metric=selection_metric,
    )


def _finish(trainer, splits, processor, output_dir: str, extra: dict) -> dict:
    """Save the model + processor, score the test split, write `results.json`."""
    prediction = trainer.predict(splits["test"], metric_key_prefix="test")
    test = prediction.metrics
    if trainer.args.should_save:
        if hasattr(trainer.model, "peft_config"):  # LoRA: the adapter + finetuned BEIs, not the whole model
            from .lora import save_lora_adapter

            save_lora_adapter(trainer.model, output_dir)
        else:
            trainer.save_model(output_dir)
        processor.save_pretrained(output_dir)
    results = {
        "test_metrics": test,
        "readout_layers": trainer.model.config.readout_layers,
        "stage_history": trainer.schedule.stage_history,
        "selection_history": trainer.schedule.selection_history,
        "log_history": trainer.state.log_history,
        **extra,
    }
    if trainer.args.should_save:
        with open(os.path.join(output_dir, "results.json"), "w") as handle:
            json.dump(_jsonable(results), handle, indent=1)
    results["test_predictions"] = (
        prediction  # logits, layer_logits and labels of the test windows (not in JSON)
    )
    results["test_dataset"] = splits["test"]
    return results


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value


def pretrain(
    data_args: LcmDataArguments, model_args: LcmModelArguments, training_args, resume_from_checkpoint=None
):
    """Multitask pretraining over several datasets. Returns the results dict (also in `results.json`)."""
    from .configuration_lcm import LcmConfig
    from .data import union_vocabulary
    from .modeling_lcm import LcmForBeiPrediction
    from .processing_lcm import LcmProcessor

    datasets = load_connectome_datasets(data_args, "pretrain")
    categorical, continuous = bei_columns(datasets, data_args)
    pseudo = declared_pseudo_labels(data_args)
    vocabulary = union_vocabulary(datasets, categorical, continuous, pseudo, data_args.standardize_continuous)
    splits = build_splits(datasets, vocabulary, data_args, pseudo)
    num_rois = splits["train"][0]["connectivity"].shape[-1]
    sizes = dict(
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        intermediate_size=model_args.intermediate_size,
    )
    common = dict(
        num_rois=num_rois,
        beis=vocabulary.to_config(),
        readout_policy=model_args.readout_policy,
        momentum_epochs=model_args.momentum_epochs,
        dropout=model_args.dropout,
        attention_dropout=model_args.attention_dropout,
        fc_norm=model_args.fc_norm,
    )
    config = (
        LcmConfig.from_preset(model_args.preset, **common)
        if model_args.preset
        else LcmConfig(**sizes, **common)
    )
    torch.manual_seed(training_args.seed)
    model = LcmForBeiPrediction(config)
    processor = LcmProcessor(vocabulary=vocabulary, num_rois=num_rois)
    trainer = _trainer(model, training_args, splits, selection_metric=model_args.readout_selection_metric)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return _finish(
        trainer,
        splits,
        processor,
        training_args.output_dir,
        {
            "datasets": list(datasets),
            "split_sizes": {k: len(v) for k, v in splits.items()},
            "data_args": asdict(data_args),
        },
    )


def confident_predictions(
    model, dataset, vocabulary, beis: list[str], threshold: float, batch_size: int = 64
):
    """Labels (n, K) of `vocabulary` holding the pretrained `model`'s predictions for `beis` where their
    probability is >= `threshold`, NaN elsewhere."""
    from .data import LcmDataCollator

    collate = LcmDataCollator()
    labels = np.full((len(dataset), len(vocabulary.names)), np.nan, dtype=np.float32)
    model.eval()
    slices = dict(zip(model.config.bei_names, model.config.bei_token_slices()))
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            logits = model(connectivity=batch["connectivity"]).logits
            for name in beis:
                probabilities = logits[:, slices[name]].softmax(-1)
                score, index = probabilities.max(-1)
                column = vocabulary.names.index(name)
                values = torch.where(score >= threshold, index.float(), torch.tensor(float("nan")))
                labels[start : start + len(values), column] = values.numpy()
    return labels


def prepare_finetuning_data(data_args: LcmDataArguments, model_name_or_path: str):
    """(vocabulary, splits): the pretrained vocabulary extended with the finetuning data's new BEIs, and the
    windowed subject-level splits labelled with it (true labels + declared pseudo-labels)."""
    from .processing_lcm import LcmProcessor

    old_vocabulary = LcmProcessor.from_pretrained(model_name_or_path).vocabulary
    datasets = load_connectome_datasets(data_args, "finetune")
    categorical, continuous = bei_columns(datasets, data_args)
    vocabulary, pseudo = finetune_vocabulary(datasets, old_vocabulary, categorical, continuous, data_args)
    splits = build_splits(datasets, vocabulary, data_args, pseudo)
    return vocabulary, splits


def finetune(data_args: LcmDataArguments, finetune_args: LcmFinetuneArguments, training_args, prepared=None):
    """Finetune a pretrained model on a dataset with new BEIs (see `LcmFinetuneArguments.mode`).

    `prepared` (optional): `prepare_finetuning_data`'s (vocabulary, splits), so several modes can be compared
    on one split (the demo does). Returns the results dict (also in `results.json`).
    """
    from .configuration_lcm import LcmConfig
    from .data import add_labels
    from .modeling_lcm import LcmForBeiPrediction
    from .processing_lcm import LcmProcessor
    from .trainer_lcm import freeze_for_linear_probe

    if finetune_args.mode not in FINETUNE_MODES:
        raise ValueError(f"expected `mode` in {list(FINETUNE_MODES)}, got {finetune_args.mode!r}")
    if finetune_args.use_lora and finetune_args.mode != "semi_supervised":
        raise ValueError(f"expected `use_lora` with mode 'semi_supervised', got mode {finetune_args.mode!r}")
    if not finetune_args.model_name_or_path:
        raise ValueError("expected `model_name_or_path`: the pretrained model + processor folder")
    pretrained = LcmForBeiPrediction.from_pretrained(finetune_args.model_name_or_path)
    processor = LcmProcessor.from_pretrained(finetune_args.model_name_or_path)
    old_vocabulary = processor.vocabulary

    vocabulary, splits = prepared or prepare_finetuning_data(data_args, finetune_args.model_name_or_path)
    splits = dict(splits)
    new_names = [name for name in vocabulary.names if name not in old_vocabulary.names]

    if finetune_args.confident_pseudo_label_threshold is not None and finetune_args.mode == "semi_supervised":
        missing = [n for n in old_vocabulary.names if old_vocabulary[n]["kind"] == "categorical"]
        extra = confident_predictions(
            pretrained, splits["train"], vocabulary, missing, finetune_args.confident_pseudo_label_threshold
        )
        splits["train"] = _model_format(add_labels(splits["train"], vocabulary, fill=extra))

    if finetune_args.mode == "scratch":
        config = LcmConfig(
            **{**pretrained.config.to_dict(), "beis": vocabulary.to_config(), "readout_layers": None}
        )
        torch.manual_seed(training_args.seed)
        model = LcmForBeiPrediction(config)
    else:
        model = pretrained
        additions = [bei for bei in vocabulary.to_config() if bei["name"] in new_names]
        torch.manual_seed(training_args.seed)
        model.add_beis(additions)
    if finetune_args.readout_policy:
        model.config.readout_policy = finetune_args.readout_policy
    if finetune_args.momentum_epochs is not None:
        model.config.momentum_epochs = finetune_args.momentum_epochs
    trainable = None
    if finetune_args.mode == "linear_probe":
        trainable = freeze_for_linear_probe(model, new_names)
    if finetune_args.use_lora:
        from .lora import apply_lora

        model = apply_lora(
            model,
            r=finetune_args.lora_r,
            lora_alpha=finetune_args.lora_alpha,
            lora_dropout=finetune_args.lora_dropout,
        )
        trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    processor = LcmProcessor(vocabulary=vocabulary, num_rois=model.config.num_rois)
    trainer = _trainer(model, training_args, splits)
    trainer.train()
    return _finish(
        trainer,
        splits,
        processor,
        training_args.output_dir,
        {
            "mode": finetune_args.mode,
            "lora": _lora_summary(model) if finetune_args.use_lora else None,
            "new_beis": new_names,
            "trainable": trainable,
            "split_sizes": {k: len(v) for k, v in splits.items()},
        },
    )


def _lora_summary(peft_model) -> dict:
    from .lora import trainable_parameters

    config = peft_model.peft_config["default"]
    trainable, total = trainable_parameters(peft_model)
    return {
        "r": config.r,
        "lora_alpha": config.lora_alpha,
        "trainable_parameters": trainable,
        "parameters": total,
    }


def finetune_vocabulary(datasets: dict, old_vocabulary, categorical, continuous, data_args):
    """The pretrained vocabulary extended with the finetuning data's new BEIs, and the pseudo-labels."""
    from .data import union_vocabulary

    pseudo = declared_pseudo_labels(data_args)
    data_vocabulary = union_vocabulary(datasets, categorical, continuous, pseudo, data_args.standardize_continuous)
    additions = [bei for bei in data_vocabulary.to_config() if bei["name"] not in old_vocabulary.names]
    return old_vocabulary.extend(additions), pseudo


__all__ = [
    "FINETUNE_MODES",
    "LcmDataArguments",
    "LcmFinetuneArguments",
    "LcmModelArguments",
    "build_splits",
    "confident_predictions",
    "finetune",
    "finetune_vocabulary",
    "prepare_finetuning_data",
    "pretrain",
]
