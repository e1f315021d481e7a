"""Training LCM: the options, `LcmTrainer` and its callbacks, the pretrain / finetune recipes, metrics,
the baseline, and adapters (LoRA, linear probe).

- :mod:`.arguments`: every `HfArgumentParser` dataclass (the one home of the training defaults).
- :mod:`.data`: the user's datasets as published -> labelled subject splits.
- :mod:`.trainer`: :class:`LcmTrainer` (two-stage readout schedule, multitask loss, metrics).
- :mod:`.recipes`: :func:`pretrain`, :func:`finetune`.
- :mod:`.metrics`, :mod:`.baseline`, :mod:`.adapters`.
"""

from .arguments import (
    FinetuneTrainingArguments,
    LcmDataArguments,
    LcmFinetuneArguments,
    LcmModelArguments,
    LcmTrainingArguments,
    parse_arguments,
)
from .recipes import finetune, prepare_finetuning_data, pretrain
from .trainer import LcmReadoutScheduleCallback, LcmTrainer

__all__ = [
    "FinetuneTrainingArguments",
    "LcmDataArguments",
    "LcmFinetuneArguments",
    "LcmModelArguments",
    "LcmReadoutScheduleCallback",
    "LcmTrainer",
    "LcmTrainingArguments",
    "finetune",
    "parse_arguments",
    "prepare_finetuning_data",
    "pretrain",
]
