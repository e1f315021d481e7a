"""Named training recipes (``--recipe NAME``): sets of defaults chosen by a study, not by a guess.

A recipe replaces the defaults of the options the user did not give (on the command line or in the
options file); every option given explicitly wins. Options of dataclasses a script does not have (e.g.
the model size for `finetune.py`, which keeps the pretrained model's size) are ignored.

- ``small_cohort``: the size-aware policy of :mod:`lcm_hf.training.small_cohort` whatever the validation size
  (``--small_cohort_policy on``): the scripts' 64 x 3 model trained from scratch for the fixed small-cohort budget
  (``small_cohort.FIXED_BUDGET``) on the training + validation subjects, with no selection, early stopping or
  temperature. Chosen by the nested study of ``benchmarks/bench_small_cohort.py`` (``RESULTS_small_cohort.md``),
  which replaced the earlier choice of this name (best-epoch selection with early stopping, 2 momentum
  epochs: below the old defaults on the test folds of every cohort). With fewer validation subjects than
  ``small_cohort.MIN_VALIDATION_SUBJECTS`` the scripts' defaults already do the same.
"""

from __future__ import annotations

from ..errors_lcm import LcmInputError

TRAINING_RECIPES: dict[str, dict[str, object]] = {
    "small_cohort": {
        # model (LcmModelArguments; training from scratch): the scripts' defaults, named so they stay the recipe's
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        # training (LcmTrainingArguments): the budget itself lives in small_cohort.FIXED_BUDGET (one home)
        "small_cohort_policy": "on",
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
