"""Every command-line option of `training/pretrain.py` and `training/finetune.py`: the one home of the training defaults.

Each option is a dataclass field read by `HfArgumentParser`, from the command line or from one JSON/YAML file
(``python training/pretrain.py config.yaml``). The defaults of training live here, except the readout
schedule's: `momentum_epochs` and `readout_policy` default to None, which means the model config's
(`lcm_hf.configuration_lcm.DEFAULT_MOMENTUM_EPOCHS` = 5, the paper's, and `DEFAULT_READOUT_POLICY` = "max" for a new
model; what a pretrained model recorded for finetuning); a value given explicitly wins and the config records the
value used (`momentum_epochs`, `readout_policy`, `readout_layers`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import warnings
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from ..configuration_lcm import DEFAULT_MOMENTUM_EPOCHS, DEFAULT_READOUT_POLICY
from ..errors_lcm import LcmInputError
from ..windows_lcm import DEFAULT_WINDOW_SIZE

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
    window_size: int = field(
        default=DEFAULT_WINDOW_SIZE,
        metadata={"help": "Window length in TRs (one window = one sample; full windows only, a shorter tail is "
                  "dropped; the paper used 500). Saved in the processor: prediction cuts the same windows."},
    )
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
    readout_policy: str | None = field(
        default=None,
        metadata={
            "help": "max (reference code), best_layer (paper), mean or last (default: the model config's, "
            f"{DEFAULT_READOUT_POLICY!r})."
        },
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
        default=None,
        metadata={"help": "max, best_layer, mean or last (default: the pretrained model config's)."},
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
    init_guard_folds: int = field(
        default=3,
        metadata={
            "help": "Before finetuning a pretrained start, compare it with the same model from scratch by an inner "
            "subject-grouped K-fold on the training subjects (never the test split) and train from scratch where "
            "scratch scores higher (lcm_hf.training.init_guard; said in one line). 0: off (2 x K short extra "
            "trainings)."
        },
    )
    allow_subject_overlap: bool = field(
        default=False,
        metadata={
            "help": "Finetune even when the starting model saw the labels of this run's test subjects (or trained "
            "on its validation subjects; config.training_subjects): every report is then marked 'optimistic: the "
            "starting model saw N of M test subjects'. Refused by default (lcm_hf.training.subjects)."
        },
    )




def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401

        return "tensorboard"
    except ImportError:
        return "none"


def _multiple(save_steps: float, eval_steps: float) -> bool:
    """Whether every evaluation every `eval_steps` falls on a checkpoint every `save_steps` (both counts of steps,
    or both fractions of the run, as transformers requires)."""
    if (save_steps >= 1) != (eval_steps >= 1):
        return False
    return round(save_steps * 1_000_000) % round(eval_steps * 1_000_000) == 0


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
    momentum_epochs: int | None = field(
        default=None,
        metadata={
            "help": "Epochs of stage 1 (mean over layers) (default: the model config's, "
            f"{DEFAULT_MOMENTUM_EPOCHS} for a new model, the paper's); the model config records the value used."
        },
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
            "help": "torch CPU threads per process (default: OMP_NUM_THREADS, else the CPUs available to the process "
            "divided by the processes on this machine, reduced to the CPUs a busy machine's load leaves free)."
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
            "(the small-cohort policy whatever the validation size). Options given explicitly win."
        },
    )
    calibrate: bool = field(
        default=True,
        metadata={
            "help": "Fit a temperature per categorical BEI on the validation windows after training "
            "(lcm_hf.training.calibration); stored as config.temperatures, applied by post_process."
        },
    )
    small_cohort_policy: str = field(
        default="auto",
        metadata={
            "help": "auto: with fewer validation subjects than lcm_hf.training.small_cohort.MIN_VALIDATION_SUBJECTS, "
            "train a fixed budget on training + validation subjects with no best-epoch selection, early stopping "
            "or temperature (said in one line); from scratch, each of --num_train_epochs/--max_steps, "
            "--per_device_train_batch_size and --lr_scheduler_type not given comes from small_cohort.FIXED_BUDGET "
            "(30 epochs, batch 32, linear: chosen by benchmarks/bench_small_cohort.py); on: always; off: never "
            "(choose on validation however small)."
        },
    )

    def __post_init__(self):
        for name in ("momentum_epochs", "momentum_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise LcmInputError(f"--{name}: expected an integer >= 0, got {value!r}")
        if self.label_smoothing_factor:  # transformers' option, read only by the Trainer's own loss
            raise LcmInputError(
                f"--label_smoothing_factor: expected 0 (the model computes its own per-BEI loss, which does not "
                f"smooth labels), got {self.label_smoothing_factor:g}")
        self._reconcile_model_selection()
        super().__post_init__()

    def _reconcile_model_selection(self) -> None:
        """``load_best_model_at_end`` needs a checkpoint at every evaluation (transformers refuses it otherwise, with
        no hint). Where the save and eval strategies do not give that, the last model is kept instead, said in one
        line naming the flags that keep the best; with ``--early_stopping_patience`` (which needs model selection)
        it is refused, naming the same flags."""
        if not self.load_best_model_at_end:
            return
        save, evaluate = (str(getattr(v, "value", v)) for v in (self.save_strategy, self.eval_strategy))
        if save == "best":
            return
        hint = ("pass --save_strategy epoch --eval_strategy epoch, or --save_strategy steps --eval_strategy steps "
                "with --save_steps a multiple of --eval_steps")
        if "no" in (save, evaluate):
            problem = (f"--save_strategy {save} and --eval_strategy {evaluate}: model selection needs evaluations, "
                       "with a checkpoint at each")
        elif save != evaluate:
            problem = (f"--save_strategy {save} and --eval_strategy {evaluate}: model selection needs a checkpoint at "
                       "every evaluation")
        elif save == "steps" and not _multiple(self.save_steps, self.eval_steps or self.logging_steps):
            problem = (f"--save_steps {self.save_steps} is not a multiple of --eval_steps "
                       f"{self.eval_steps or self.logging_steps}: model selection needs a checkpoint at every evaluation")
        else:
            return
        if self.early_stopping_patience:
            raise LcmInputError(f"{problem} (--early_stopping_patience keeps the best checkpoint); {hint}")
        warnings.warn(f"{problem}, so the last model is kept (load_best_model_at_end off); to keep the best, {hint}",
                      UserWarning, stacklevel=3)
        self.load_best_model_at_end = False


@dataclass
class FinetuneTrainingArguments(LcmTrainingArguments):
    """`LcmTrainingArguments` with finetuning defaults. The learning rate (1e-2) and the 10 epochs (best validation
    epoch kept) follow `benchmarks/bench_transfer.py` (`benchmarks/RESULTS_transfer.md`): at 1e-3 the new BEI tokens
    of a pretrained model barely move in the few steps a small cohort gives."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "Where the finetuned model goes."})
    num_train_epochs: float = 10.0
    per_device_train_batch_size: int = 16
    learning_rate: float = 1e-2


POSITIVE_COUNTS = (
    ("window_size", "a positive number of TRs"),
    ("window_stride", "a positive number of TRs"),
    ("per_device_train_batch_size", "a positive number of windows"),
    ("per_device_eval_batch_size", "a positive number of windows"),
    ("bootstrap_resamples", "a positive number of resamples"),
    ("lora_r", "a positive rank"),
)
"""Options that must be a positive count when given (None: the option's default behaviour)."""


def check_counts(parsed: tuple) -> tuple:
    """Refuse counts that cannot work, by flag (``--window_size: expected a positive number of TRs, got -40``), before
    any data is read: the :data:`POSITIVE_COUNTS`, ``--num_train_epochs`` (unless ``--max_steps`` > 0), ``--max_steps``
    when given (> 0; -1 = by epochs). (``--momentum_epochs`` / ``--momentum_steps`` are checked by
    ``LcmTrainingArguments.__post_init__``, for the Python API too.)"""
    def value(name):
        return next((getattr(args, name) for args in parsed if hasattr(args, name)), None)

    for name, expected in POSITIVE_COUNTS:
        given = value(name)
        if given is not None and given < 1:
            raise LcmInputError(f"--{name}: expected {expected}, got {given:g}")
    max_steps = value("max_steps")
    if max_steps is not None and (max_steps == 0 or max_steps < -1):
        raise LcmInputError(f"--max_steps: expected a positive number of optimizer steps (or -1: train by "
                            f"--num_train_epochs), got {max_steps}")
    epochs = value("num_train_epochs")
    if epochs is not None and epochs <= 0 and not (max_steps or 0) > 0:
        raise LcmInputError(f"--num_train_epochs: expected a positive number of epochs (or --max_steps N), got {epochs:g}")
    return parsed


def build_parser(dataclass_types, prog: str | None = None) -> HfArgumentParser:
    """The `HfArgumentParser` of a training script: one-line usage errors, ``--version``, the ``--debug`` epilog."""
    from ..console import DEBUG_ENV, one_line_errors, package_version

    parser = one_line_errors(HfArgumentParser(dataclass_types, prog=prog, allow_abbrev=False))  # an abbreviation would not count as given
    parser.add_argument("--version", action="version", version=f"%(prog)s (lcm-hf) {package_version()}")
    parser.epilog = (f"A bare --debug (not followed by a value) or {DEBUG_ENV}=1 shows the full traceback of an "
                     "error instead of one line.")
    return parser


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """Parse the dataclasses from one .json/.yaml/.yml file or from the command line.

    Each parsed object records the option names the user gave in ``explicit_options`` (a frozenset; a named
    recipe's values are not among them), so that a default can depend on whether an option was set."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(dataclass_types)
    from .named_recipes import apply_training_recipe

    fields = {f.name for dataclass_type in dataclass_types for f in dataclasses.fields(dataclass_type) if f.init}

    try:  # transformers' dataclasses check flags with plain ValueErrors: at this boundary they are the user's
        if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
            import yaml  # JSON is YAML

            with open(argv[0]) as handle:
                explicit = set(yaml.safe_load(handle) or {})
            _refuse_unknown_options(sorted(explicit - fields), fields, f"key in {argv[0]}:", prefix="")
            read = parser.parse_json_file if argv[0].endswith(".json") else parser.parse_yaml_file
            parsed = read(os.path.abspath(argv[0]))
        else:
            explicit = {_option_name(token, fields) for token in argv if token.startswith("--")}
            *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
            options = [token.split("=", 1)[0] for token in remaining if token.startswith("-")]
            _refuse_unknown_options(options, set(parser._option_string_actions), "option")
            if remaining:
                raise LcmInputError(f"expected options (--name value), got the stray argument(s) {remaining}")
    except ValueError as error:
        if isinstance(error, LcmInputError):
            raise
        raise LcmInputError(str(error)) from error
    for obj in parsed:  # what the user set (lcm_hf.training.small_cohort: the budget a small cohort keeps)
        obj.explicit_options = frozenset(explicit)
    return check_counts(apply_training_recipe(parsed, explicit))


def _option_name(token: str, fields: set[str]) -> str:
    """The field an option token sets: ``--max-steps=5`` and ``--max_steps`` set ``max_steps``; transformers'
    ``--no_calibrate`` / ``--no-calibrate`` set ``calibrate`` (a field whose own name starts with ``no_`` stays)."""
    name = token[2:].split("=", 1)[0].replace("-", "_")
    return name[3:] if name.startswith("no_") and name not in fields and name[3:] in fields else name


def _refuse_unknown_options(given: list[str], known: set[str], what: str, prefix: str = "--") -> None:
    """One line for the first of `given` that is not in `known`, with the closest known names (a typo's fix)."""
    if not given:
        return
    names = sorted({name.lstrip("-").replace("-", "_") for name in known})
    close = difflib.get_close_matches(given[0].lstrip("-").replace("-", "_"), names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(prefix + name for name in close)}?" if close else ""
    raise LcmInputError(f"unknown {what} {given[0]}: expected one of this script's options (--help lists them){hint}")


# The options of each training script (`training/<script>`), in the order they are parsed.
SCRIPT_ARGUMENTS = {
    "pretrain.py": (LcmDataArguments, LcmModelArguments, LcmTrainingArguments),
    "finetune.py": (LcmDataArguments, LcmFinetuneArguments, FinetuneTrainingArguments),
}


__all__ = [
    "FINETUNE_MODES",
    "FinetuneTrainingArguments",
    "LcmDataArguments",
    "LcmFinetuneArguments",
    "LcmModelArguments",
    "LcmTrainingArguments",
    "SCRIPT_ARGUMENTS",
    "build_parser",
    "POSITIVE_COUNTS",
    "check_counts",
    "parse_arguments",
]
