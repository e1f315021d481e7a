"""Argument parsing shared by `training/pretrain.py` and `training/finetune.py`.

Every option is a dataclass field read by `HfArgumentParser`, from the command line or from one JSON/YAML
file (``python training/pretrain.py config.yaml``), with a few training defaults that suit the demo cohort.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments


def _default_report_to() -> str:
    try:
        import tensorboard  # noqa: F401

        return "tensorboard"
    except ImportError:
        return "none"


@dataclass
class LcmTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults for LCM on the demo cohort (every one can be overridden)."""

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


@dataclass
class FinetuneTrainingArguments(LcmTrainingArguments):
    """`LcmTrainingArguments` with finetuning defaults."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "Where the finetuned model goes."})
    num_train_epochs: float = 40.0
    per_device_train_batch_size: int = 16


def parse_arguments(dataclass_types, argv: list[str] | None = None):
    """Parse the dataclasses from one .json/.yaml/.yml file or from the command line."""
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(dataclass_types)
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(os.path.abspath(argv[0]))
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


__all__ = ["FinetuneTrainingArguments", "LcmTrainingArguments", "parse_arguments"]
