"""Named training recipes (``--recipe NAME``): sets of defaults chosen by a study, not by a guess.

A recipe replaces the defaults of the options the user did not give (on the command line or in the
options file); every option given explicitly wins. Options of dataclasses a script does not have (e.g.
the model size for `finetune.py`, which keeps the pretrained model's size) are ignored.

- ``small_cohort``: for cohorts of tens to a few hundred subjects, chosen by
  ``benchmarks/bench_small_cohort.py`` (see ``benchmarks/RESULTS_small_cohort.md``): a small, strongly
  regularised model (32 x 2, dropout 0.3, weight decay 0.05), up to 40 epochs with early stopping
  (patience 8) on the subject-level validation AUC, the best epoch kept.
"""

from __future__ import annotations

TRAINING_RECIPES: dict[str, dict[str, object]] = {
    "small_cohort": {
        # model (LcmModelArguments; pretraining from scratch)
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "dropout": 0.3,
        "attention_dropout": 0.3,
        # training (LcmTrainingArguments)
        "weight_decay": 0.05,
        "num_train_epochs": 40.0,
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
        raise ValueError(f"--recipe: expected one of {sorted(TRAINING_RECIPES)}, got {name!r}")
    for key, value in TRAINING_RECIPES[name].items():
        if key in explicit:
            continue
        for obj in parsed:
            if hasattr(obj, key):
                setattr(obj, key, value)
    return parsed


__all__ = ["TRAINING_RECIPES", "apply_training_recipe"]
