"""Every command-line option of `training/pretrain.py` and `training/finetune.py`: the one home of the training defaults.

Each option is a dataclass field read by `HfArgumentParser`, from the command line or from one JSON/YAML file
(``python training/pretrain.py config.yaml``). The model config only *records* what training used
(`momentum_epochs`, `readout_layers`); the defaults live here.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from ..configuration_lcm import DEFAULT_READOUT_POLICY

FINETUNE_MODES = ("semi_supervised", "linear_probe", "scratch")

@dataclass
class LcmDataArguments:
    """Which connectome datasets to use and how to cut them into samples."""

    dataset_dirs: list[str] | None = field(
        default=None,
        metadata={
            "help": "Connectome datasets: folders written by `processing/build_dataset.py` / `publish_dataset` "
            "(parquet + card) or by `Dataset.save_to_disk`. Required unless --demo is given."
        },
    )
    demo: bool = field(
        default=False,
        metadata={"help": "Train on the SIMULATED demo cohort (lcm_hf.demo) instead of --dataset_dirs."},
    )
    categorical_columns: list[str] | None = field(
        default=None, metadata={"help": "Categorical BEI columns (with --demo: the cohort's BEIs by default)."}
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
    demo_seed: int = field(default=0, metadata={"help": "With --demo: seed of the simulated cohort."})
    demo_subjects: int | None = field(
        default=None, metadata={"help": "With --demo: subjects per demo dataset (default: the cohort's)."}
    )
    demo_datasets: list[str] | None = field(
        default=None, metadata={"help": "With --demo: the demo datasets to use (default: by stage)."}
    )
    window_size: int = field(default=90, metadata={"help": "Window length in TRs (one window = one sample)."})
    window_stride: int | None = field(
        default=None, metadata={"help": "Step between windows (default: non-overlapping)."}
    )
    validation_fraction: float = field(
        default=0.15, metadata={"help": "Fraction of subjects for validation."}
    )
    test_fraction: float = field(default=0.15, metadata={"help": "Fraction of subjects for the test split."})
    stratify_column: list[str] | None = field(
        default=None,
        metadata={"help": "Columns to stratify subject splits on (each dataset uses those it has)."},
    )
    split_seed: int = field(default=0, metadata={"help": "Seed of the subject-level splits."})
    short_series: str = field(
        default="drop",
        metadata={
            "help": "Scans shorter than --window_size: drop (listed in a warning) or pad (one window of their "
            "valid TRs, FC over those TRs only)."
        },
    )
    class_aliases: str | None = field(
        default=None,
        metadata={
            "help": 'JSON {bei: {spelling: class}} merging class spellings across datasets, e.g. '
            '\'{"sex": {"female": "F", "male": "M"}}\'. Class names are otherwise matched exactly.'
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Stream the --dataset_dirs (published parquet shards) instead of loading them: windows cut on "
            "the fly with random-offset crops, FC in the collator, shards split over processes, held-out subjects "
            "by a hash of subject_id (or the published splits). Needs --max_steps (lcm_hf.training.streaming)."
        },
    )
    dataset_weights: list[float] | None = field(
        default=None,
        metadata={"help": "With --streaming: sampling weight of each --dataset_dirs (default: round-robin)."},
    )
    stream_workers: int = field(
        default=1,
        metadata={
            "help": "With --streaming: background processes that decode the stream, cut windows and compute FC "
            "while the model trains, 0 or 1 (the stream position is tracked per batch; --dataloader_num_workers "
            "applies to the held-out sets)."
        },
    )
    group_by: str = field(
        default="subject_id",
        metadata={"help": "Split (and cross-validate) by this column: subject_id, or site for held-out sites."},
    )
    cv_folds: int | None = field(
        default=None,
        metadata={
            "help": "K-fold cross-validation grouped by --group_by (seeded by --split_seed, stratified by "
            "--stratify_column): fold k trains into <output_dir>/fold-<k> with a validation split carved out of "
            "its training subjects; cv_report.md / cv_results.json hold per-fold and mean +/- sd metrics. "
            "Published test splits are left out (lcm_hf.training.cross_validation)."
        },
    )
    eval_level: str = field(
        default="auto",
        metadata={
            "help": "scan (one prediction per scan, its windows averaged), subject, or auto: scan for a BEI whose "
            "label varies within a subject (task condition, run), subject otherwise. The report says which."
        },
    )
    baseline: bool = field(
        default=True,
        metadata={
            "help": "Score an FC + logistic regression (ridge for continuous BEIs) baseline and chance on the same "
            "test subjects, with bootstrap intervals (report.md in --output_dir)."
        },
    )
    bootstrap_resamples: int = field(
        default=1000, metadata={"help": "Bootstrap resamples of the test subjects for the 95%% intervals."}
    )


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
    readout_policy: str = field(
        default=DEFAULT_READOUT_POLICY, metadata={"help": "max (reference code), best_layer (paper), mean or last."}
    )
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
    use_lora: bool = field(
        default=False,
        metadata={
            "help": "semi_supervised with LoRA adapters (peft) on the attention projections: only the adapters, "
            "the BEI tokens, the readout and the FC encoder's norm train; the output folder holds the adapter "
            "(`lcm_hf.training.adapters.load_lora_adapter(pretrained model, output_dir)` reloads it)."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (with --use_lora)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 * lora_r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA path."})




def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401

        return "tensorboard"
    except ImportError:
        return "none"


@dataclass
class LcmTrainingArguments(TrainingArguments):
    """`TrainingArguments` with LCM's training defaults (every one can be overridden), and the length of the
    two-stage readout schedule's stage 1 (`momentum_epochs`)."""

    output_dir: str = field(
        default="runs/pretrain", metadata={"help": "Where checkpoints and the final model go."}
    )
    num_train_epochs: float = field(
        default=30.0, metadata={"help": "Epochs (the first momentum_epochs are stage 1)."}
    )
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: float = 10
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = 2
    logging_strategy: str = "epoch"
    report_to: None | str | list[str] = field(default_factory=_default_report_to)
    dataloader_num_workers: int = 0
    momentum_epochs: int = field(
        default=2,
        metadata={"help": "Epochs of stage 1 (mean over layers); the model config records the value used."},
    )
    momentum_steps: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps of stage 1, counted in steps instead of --momentum_epochs (with --streaming, "
            "where epochs are undefined; default there: max_steps // 10)."
        },
    )
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads per process (default: the CPUs available to the process divided by the "
            "processes on this machine)."
        },
    )
    load_best_model_at_end: bool = field(
        default=True,
        metadata={
            "help": "Keep the checkpoint with the best validation --metric_for_best_model (stage-2 epochs only; "
            "lcm_hf.training.selection), not the last epoch's. results.json says which epoch was kept."
        },
    )
    metric_for_best_model: str | None = field(
        default="mean/subject/roc_auc",
        metadata={
            "help": "Validation metric of model selection: mean/subject/<metric> averages the categorical BEIs' "
            "subject-level scores (falls back to `loss` without a categorical BEI), or `loss`."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without improvement (EarlyStoppingCallback)."},
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "Minimum improvement that resets the early-stopping patience."}
    )
    recipe: str | None = field(
        default=None,
        metadata={
            "help": "A named set of defaults chosen by a study (lcm_hf.training.named_recipes): small_cohort "
            "(tens to a few hundred subjects). Options given explicitly win."
        },
    )
    calibrate: bool = field(
        default=True,
        metadata={
            "help": "Fit a temperature per categorical BEI on the validation windows after training "
            "(lcm_hf.training.calibration); stored as config.temperatures, applied by post_process."
        },
    )

    def __post_init__(self):
        strategies = [getattr(value, "value", value) for value in (self.save_strategy, self.eval_strategy)]
        if self.load_best_model_at_end and "no" in strategies:
            # Model selection needs a checkpoint at every evaluation: without either, keep the last epoch.
            logging.getLogger(__name__).warning(
                f"load_best_model_at_end: needs --eval_strategy and --save_strategy, got {self.eval_strategy!r} and "
                f"{self.save_strategy!r}; the last epoch is kept"
            )
            self.load_best_model_at_end = False
        super().__post_init__()


@dataclass
class FinetuneTrainingArguments(LcmTrainingArguments):
    """`LcmTrainingArguments` with finetuning defaults. The learning rate (1e-2) and the 10 epochs (best validation
    epoch kept) follow `benchmarks/bench_transfer.py` (`benchmarks/RESULTS_transfer.md`): at 1e-3 the new BEI tokens
    of a pretrained model barely move in the few steps a small cohort gives."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "Where the finetuned model goes."})
    num_train_epochs: float = 10.0
    per_device_train_batch_size: int = 16
    learning_rate: float = 1e-2


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """Parse the dataclasses from one .json/.yaml/.yml file or from the command line."""
    from ..console import DEBUG_ENV, one_line_errors, package_version

    argv = sys.argv[1:] if argv is None else argv
    parser = one_line_errors(HfArgumentParser(dataclass_types))
    parser.add_argument("--version", action="version", version=f"%(prog)s (lcm-hf) {package_version()}")
    parser.epilog = (f"A bare --debug (not followed by a value) or {DEBUG_ENV}=1 shows the full traceback of an "
                     "error instead of one line.")
    from .named_recipes import apply_training_recipe

    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        import yaml  # JSON is YAML

        with open(argv[0]) as handle:
            explicit = set(yaml.safe_load(handle) or {})
        read = parser.parse_json_file if argv[0].endswith(".json") else parser.parse_yaml_file
        return apply_training_recipe(read(os.path.abspath(argv[0])), explicit)
    explicit = {token[2:].split("=", 1)[0] for token in argv if token.startswith("--")}
    return apply_training_recipe(parser.parse_args_into_dataclasses(args=argv), explicit)


__all__ = [
    "FINETUNE_MODES",
    "FinetuneTrainingArguments",
    "LcmDataArguments",
    "LcmFinetuneArguments",
    "LcmModelArguments",
    "LcmTrainingArguments",
    "parse_arguments",
]
