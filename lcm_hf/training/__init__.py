"""Training LCM: the options, `LcmTrainer` and its callbacks, the pretrain / finetune recipes, metrics,
the baseline, and adapters (LoRA, linear probe).

- :mod:`.arguments`: every `HfArgumentParser` dataclass (the one home of the training defaults).
- :mod:`.data`: the user's datasets as published -> labelled subject splits.
- :mod:`.trainer`: :class:`LcmTrainer` (two-stage readout schedule, multitask loss, metrics).
- :mod:`.recipes`: :func:`pretrain`, :func:`finetune`.
- :mod:`.metrics`, :mod:`.baseline`, :mod:`.adapters`.
- :mod:`.evaluation` (scan / subject level, LCM vs baseline vs chance with bootstrap intervals, verdict words),
  :mod:`.report` (a run's ``report.md``), :mod:`.cross_validation` + :mod:`.cv_report` (``--cv_folds``).
- :mod:`.runtime` (the process a script runs in), :mod:`.script_help` (the scripts' stored ``--help``).
"""

from ..lazy_imports import lazy_getattr

# Loaded on first use (PEP 562): `training/*.py --help` needs the arguments, not the Trainer / datasets / peft.
_LAZY = {
    "FinetuneTrainingArguments": "arguments",
    "LcmDataArguments": "arguments",
    "LcmFinetuneArguments": "arguments",
    "LcmModelArguments": "arguments",
    "LcmTrainingArguments": "arguments",
    "parse_arguments": "arguments",
    "finetune": "recipes",
    "prepare_finetuning_data": "recipes",
    "pretrain": "recipes",
    "LcmReadoutScheduleCallback": "trainer",
    "LcmTrainer": "trainer",
}


__getattr__ = lazy_getattr(__name__, _LAZY)

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
