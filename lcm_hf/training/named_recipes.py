"""Named training recipes (``--recipe NAME``): sets of defaults chosen by a study, not by a guess.

A recipe replaces the defaults of the options the user did not give (on the command line or in the
options file); every option given explicitly wins. Options of dataclasses a script does not have (e.g.
the model size for `finetune.py`, which keeps the pretrained model's size) are ignored.

- ``small_cohort``: for cohorts of tens to a few hundred subjects, chosen by
  ``benchmarks/bench_small_cohort.py`` on inner validation (see ``benchmarks/RESULTS_small_cohort.md``, which
  also shows its limits: it stays below FC + logistic regression there): the 64 x 3 model (dropout 0.1,
  weight decay 0.01), batch 16, 2 momentum epochs, up to 30 epochs with early stopping (patience 8) on the subject-level
  validation ROC-AUC, the best stage-2 epoch kept. The smaller, more regularised candidate (32 x 2,
  dropout 0.3, weight decay 0.05) and random-offset crops were not better on inner validation. With fewer
  validation subjects than ``lcm_hf.training.small_cohort.MIN_VALIDATION_SUBJECTS`` the size-aware policy
  (``--small_cohort_policy auto``) replaces that selection and early stopping by the fixed budget on training +
  validation subjects, as the study found selection on 6-19 validation subjects lowered test AUC.
"""

from __future__ import annotations

from ..errors_lcm import LcmInputError

TRAINING_RECIPES: dict[str, dict[str, object]] = {
    "small_cohort": {
        # model (LcmModelArguments; training from scratch)
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        # training (LcmTrainingArguments)
        "weight_decay": 0.01,
        "num_train_epochs": 30.0,
        "per_device_train_batch_size": 16,
        "warmup_steps": 5,
        "momentum_epochs": 2,  # what the study ran (the trainer's default is the model config's, 5)
        "early_stopping_patience": 8,
        "load_best_model_at_end": True,
        "metric_for_best_model": "mean/subject/roc_auc",
    },
}


def apply_training_recipe(parsed: tuple, explicit: set[str]) -> tuple:
    """Give the parsed dataclasses the recipe named by a ``recipe`` field, except for the `explicit` options.

    Raises
    ------
    ValueError
        For an unknown recipe name.
    """
    name = next((getattr(obj, "recipe", None) for obj in parsed if getattr(obj, "recipe", None)), None)
    if name is None:
        return parsed
    if name not in TRAINING_RECIPES:
        raise LcmInputError(f"--recipe: expected one of {sorted(TRAINING_RECIPES)}, got {name!r}")
    for key, value in TRAINING_RECIPES[name].items():
        if key in explicit:
            continue
        for obj in parsed:
            if hasattr(obj, key):
                setattr(obj, key, value)
    return parsed


__all__ = ["TRAINING_RECIPES", "apply_training_recipe"]
