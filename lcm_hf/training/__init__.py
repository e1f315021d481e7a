"""Training LCM: the options, `LcmTrainer` and its callbacks, the pretrain / finetune recipes, metrics,
the baseline, and adapters (LoRA, linear probe).

- :mod:`.arguments`: every `HfArgumentParser` dataclass (the one home of the training defaults).
- :mod:`.data`: the user's datasets as published -> labelled subject splits.
- :mod:`.trainer`: :class:`LcmTrainer` (two-stage readout schedule, multitask loss, metrics).
- :mod:`.recipes`: :func:`pretrain`, :func:`finetune`.
- :mod:`.metrics`, :mod:`.baseline`, :mod:`.adapters`.
- :mod:`.evaluation` (scan / subject level, LCM vs baseline vs chance with bootstrap intervals, verdict words),
  :mod:`.report` (a run's ``report.md``), :mod:`.cross_validation` + :mod:`.cv_report` (``--cv_folds``).
"""

import importlib

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


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


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
