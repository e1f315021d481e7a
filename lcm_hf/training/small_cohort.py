"""The size-aware training policy: with too few validation subjects to choose reliably, no choosing.

Best-epoch selection, early stopping and temperature scaling all fit something to the validation split. On a
handful of subjects that fit is noise: ``benchmarks/RESULTS_small_cohort.md`` found that keeping the best
validation epoch on 6-19 validation subjects lowered test ROC-AUC on all three cohorts it studied (and did not
help on 5-6 in the nested study), and fitted temperatures hit their search bounds. So, with fewer than :data:`MIN_VALIDATION_SUBJECTS` validation subjects
(``--small_cohort_policy auto``, the default; ``on`` always, ``off`` never), :func:`apply_small_cohort_policy`
makes a run

- train a fixed budget on the training **and** validation subjects: the one given (``--num_train_epochs`` or
  ``--max_steps``, batch, ``--lr_scheduler_type``), and for a model trained from scratch (``pretrain``) the
  options not given from :data:`FIXED_BUDGET`, the budget the nested study chose (computed here only),
- with no evaluation during training, no best-epoch selection (the last step is kept), no early stopping,
- and no temperature (none fitted on that split; a starting model's are dropped, as they belong to other logits),

and say so in one line (printed, and at the top of ``report.md`` / ``cv_report.md``). With ``best_layer`` readout
no layer is selected either: each BEI reads the mean over layers.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

MIN_VALIDATION_SUBJECTS = 20
"""Validation subjects below which a run does not select, stop early or calibrate on validation.

Derivation (``benchmarks/RESULTS_small_cohort.md``): best-epoch selection against the same model trained without
it, test ROC-AUC, at every validation size measured: -0.008 with 6-7 validation subjects (simulated demo-40),
-0.017 with 7-8 (ADHD), -0.050 with 19 (simulated demo-120; earlier study), and +0.008 (fold mean) / +0.014
(pooled) with 5-6 against the budget on all subjects (ADHD, nested study, 5 split seeds, sd 0.075 / 0.079: no
detectable effect). No size from 5 to 19 showed selection helping, and the largest loss was at 19, so the
threshold is the smallest size above all of them: 20. It is a lower bound, not a size where selection was seen to
pay off (none >= 20 was studied): at 20 subjects (10 per class) one validation AUC near 0.7 has a standard error
of about 0.05 (Hanley-McNeil), as large as the losses measured."""

FIXED_BUDGET = {"num_train_epochs": 30.0, "per_device_train_batch_size": 32, "lr_scheduler_type": "linear"}
"""The budget of a small cohort trained from scratch, for each option the user did not set: 30 epochs (so it scales
with the cohort: 60 optimizer steps for 38 subjects, 30 for 19), batch 32, linear decay after a 10-step warmup.

Chosen by the nested study of ``benchmarks/bench_small_cohort.py`` (``RESULTS_small_cohort.md``, top section): in
every outer training set of the development sets (ADHD, 5 split seeds x 5 folds; the simulated demo cohort at 120
and 40 subjects, 2 split seeds each) an inner stratified 2-fold CV scored this budget, fixed budgets of 50-400
steps at batch 16 with a constant rate (the "plain loop" of issue 18) and the paper's recipe (lr 1e-4, 200-800
steps), and the rule fixed in advance (best mean inner AUC; within 0.01, the fewest steps) picked this one most
often: in 20 of the 45 outer folds (16 of the 25 ADHD ones; no other candidate more than 7). The paper's long
training was the weakest on ADHD (0.61-0.62). With this budget the scripts' defaults score ROC-AUC
0.704 +/- 0.056 (fold mean) / 0.646 +/- 0.032 (pooled) on ADHD against the FC + logistic baseline's
0.748 / 0.703 (5 split seeds): still below it. An average of 5 such models (not something the scripts train) was
0.016 / 0.048 higher in the study."""

POLICIES = ("auto", "on", "off")


def validation_subjects(splits: dict) -> int:
    """Distinct ``dataset::subject_id`` of ``splits["validation"]`` (0 when it is None or empty)."""
    validation = splits.get("validation")
    if validation is None or len(validation) == 0:
        return 0
    names = validation["dataset"] if "dataset" in validation.column_names else [""] * len(validation)
    return len(set(zip(names, validation["subject_id"])))


def uses_small_cohort_policy(splits: dict, training_args) -> bool:
    """Whether the run trains without choosing on validation (``--small_cohort_policy``, default ``auto``)."""
    policy = getattr(training_args, "small_cohort_policy", "auto") or "auto"
    if policy not in POLICIES:
        raise LcmInputError(f"--small_cohort_policy: expected one of {list(POLICIES)}, got {policy!r}")
    if policy == "off":
        return False
    return policy == "on" or validation_subjects(splits) < MIN_VALIDATION_SUBJECTS


def _optimizer_steps(training_args, windows: int) -> int:
    if getattr(training_args, "max_steps", -1) and training_args.max_steps > 0:
        return int(training_args.max_steps)
    per_step = (training_args.per_device_train_batch_size * max(training_args.gradient_accumulation_steps, 1)
                * max(getattr(training_args, "world_size", 1), 1))
    return int(math.ceil(training_args.num_train_epochs * math.ceil(windows / per_step)))


def _given(training_args, name: str) -> bool:
    """Whether the user set option `name`: named on the command line / in the options file (``explicit_options``,
    recorded by ``parse_arguments``), or, for arguments built in Python, a value other than the dataclass's
    default."""
    explicit = getattr(training_args, "explicit_options", None)
    if explicit is not None:
        return name in explicit
    default = next((f.default for f in dataclasses.fields(training_args) if f.name == name), dataclasses.MISSING)
    value = getattr(training_args, name)
    return str(getattr(value, "value", value)) != str(getattr(default, "value", default))


def without_selection(training_args):
    """A copy of the training arguments that chooses nothing on validation: no evaluation, no best-epoch load, no
    early stopping, no temperature (the small-cohort policy, and the initialisation guard's inner fits)."""
    args = copy.deepcopy(training_args)
    args.eval_strategy = "no"
    args.load_best_model_at_end = False
    args.early_stopping_patience = None
    args.calibrate = False
    return args


def fixed_budget(training_args) -> dict:
    """The options of the small-cohort budget this run takes from :data:`FIXED_BUDGET`: each one the user did not
    set. A budget given as ``--num_train_epochs`` or ``--max_steps`` keeps the steps the user's."""
    budget = dict(FIXED_BUDGET)
    if _given(training_args, "max_steps") or _given(training_args, "num_train_epochs"):
        budget.pop("max_steps", None)
        budget.pop("num_train_epochs", None)
    elif "num_train_epochs" in budget:
        budget["max_steps"] = -1  # an epoch budget: counted in epochs, so it scales with the cohort
    return {name: value for name, value in budget.items() if not _given(training_args, name)}


def apply_small_cohort_policy(splits: dict, training_args, from_scratch: bool = False) -> tuple[dict, object, str | None]:
    """(splits, training arguments, sentence) of the run: unchanged with enough validation subjects, else the
    validation rows joined to ``train`` (``validation`` None) and a copy of the arguments with no evaluation,
    selection, early stopping or calibration, and the one-line sentence saying so.

    Parameters
    ----------
    splits : dict
        ``{"train", "validation", "test"}`` window rows.
    training_args : LcmTrainingArguments
    from_scratch : bool
        A model trained from scratch (``pretrain``): its budget is :data:`FIXED_BUDGET` where the user set none
        (:func:`fixed_budget`). Finetuning keeps its own (the study trained from scratch only).
    """
    if not uses_small_cohort_policy(splits, training_args):
        return splits, training_args, None
    from datasets import concatenate_datasets

    from .data import model_format

    n_validation = validation_subjects(splits)
    n_train = validation_subjects({"validation": splits["train"]})
    parts = [splits["train"]] + ([splits["validation"]] if n_validation else [])
    splits = {**splits, "train": model_format(concatenate_datasets(parts)), "validation": None}
    args = without_selection(training_args)
    budget = fixed_budget(training_args) if from_scratch else {}
    for name, value in budget.items():
        setattr(args, name, value)
    epochs = (f"{args.max_steps} steps" if getattr(args, "max_steps", -1) and args.max_steps > 0
              else f"{args.num_train_epochs:g} epoch" + ("" if args.num_train_epochs == 1 else "s"))
    why = ("--small_cohort_policy on" if getattr(training_args, "small_cohort_policy", "auto") == "on" else
           f"{n_validation} validation subjects, fewer than {MIN_VALIDATION_SUBJECTS}: too few to choose reliably")
    what = f"a fixed {epochs} (about {_optimizer_steps(args, len(splits['train']))} optimizer steps"
    if budget:
        schedule = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
        what += f", batch {args.per_device_train_batch_size}, {schedule} learning rate"
        if {"max_steps", "num_train_epochs"} & set(budget):
            what += ": the small-cohort budget, --num_train_epochs or --max_steps to change"
    what += ")"
    sentence = (f"Small cohort ({why}): trained {what} on the {n_train} training + {n_validation} validation "
                "subjects, with no best-epoch selection, no early stopping and no temperature fitted "
                "(--small_cohort_policy off to choose on validation).")
    if getattr(args, "should_log", True):
        print(sentence, flush=True)
    return splits, args, sentence


__all__ = ["FIXED_BUDGET", "MIN_VALIDATION_SUBJECTS", "POLICIES", "apply_small_cohort_policy", "fixed_budget",
           "uses_small_cohort_policy", "validation_subjects", "without_selection"]
