"""The size-aware policy (lcm_hf.training.small_cohort): too few validation subjects to choose on -> no choosing."""

import numpy as np
import pytest
from datasets import Dataset

from lcm_hf.training.arguments import LcmTrainingArguments
from lcm_hf.training.data import model_format
from lcm_hf.training.small_cohort import MIN_VALIDATION_SUBJECTS, apply_small_cohort_policy


def windows(subjects, per_subject=2, rois=4):
    rows = [(s, w) for s in subjects for w in range(per_subject)]
    return model_format(Dataset.from_dict({
        "connectivity": [np.eye(rois, dtype=np.float32) for _ in rows],
        "labels": [[float(i % 2)] for i, _ in enumerate(rows)],
        "subject_id": [s for s, _ in rows],
        "dataset": ["d"] * len(rows),
    }))


def args(tmp_path, **kw):
    return LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", num_train_epochs=10,
                                per_device_train_batch_size=4, early_stopping_patience=3, **kw)


def splits(n_train, n_validation):
    return {"train": windows([f"t{i}" for i in range(n_train)]),
            "validation": windows([f"v{i}" for i in range(n_validation)]), "test": windows(["x0", "x1"])}


def test_too_few_validation_subjects_train_on_all_without_choosing(tmp_path, capsys):
    given = args(tmp_path)
    out, used, sentence = apply_small_cohort_policy(splits(30, 6), given)
    assert out["validation"] is None and len(out["train"]) == 2 * 36
    assert set(out["train"]["subject_id"]) >= {"t0", "v5"}
    assert used.eval_strategy == "no" and not used.load_best_model_at_end and used.early_stopping_patience is None
    assert used.calibrate is False
    assert given.load_best_model_at_end and given.early_stopping_patience == 3  # the caller's arguments untouched
    assert sentence == (f"Small cohort (6 validation subjects, fewer than {MIN_VALIDATION_SUBJECTS}: too few to "
                        "choose reliably): trained a fixed 10 epochs (about 180 optimizer steps) on the 30 training "
                        "+ 6 validation subjects, with no best-epoch selection, no early stopping and no temperature "
                        "fitted (--small_cohort_policy off to choose on validation).")  # 72 windows / 4 = 18 a epoch
    assert capsys.readouterr().out.strip() == sentence


@pytest.mark.parametrize("policy, n_validation, applies", [
    ("auto", MIN_VALIDATION_SUBJECTS, False), ("auto", MIN_VALIDATION_SUBJECTS - 1, True),
    ("off", 3, False), ("on", MIN_VALIDATION_SUBJECTS + 5, True)])
def test_the_policy_follows_the_threshold_and_the_flag(tmp_path, policy, n_validation, applies):
    out, used, sentence = apply_small_cohort_policy(splits(40, n_validation), args(tmp_path, small_cohort_policy=policy))
    assert (sentence is not None) == applies and (out["validation"] is None) == applies
    assert used.load_best_model_at_end == (not applies)


def test_an_unknown_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"--small_cohort_policy: expected one of \['auto', 'on', 'off'\], got 'x'"):
        apply_small_cohort_policy(splits(4, 2), args(tmp_path, small_cohort_policy="x"))


def script_arguments(tmp_path, *flags):
    from lcm_hf.training.arguments import SCRIPT_ARGUMENTS, parse_arguments

    return parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], ["--dataset_dirs", "unused", "--categorical_columns",
                                                            "diagnosis", "--output_dir", str(tmp_path), "--report_to",
                                                            "none", "--use_cpu", *flags])


def test_a_48_subject_set_trains_the_small_cohort_budget_by_default(tmp_path):
    """The scripts' defaults (no --recipe) on a 48-subject set like the ADHD one: one run and every --cv_folds 5 fold
    have too few validation subjects, so training from scratch takes FIXED_BUDGET, said in the one line."""
    from datasets import DatasetDict

    from lcm_hf.training.cross_validation import fold_datasets
    from lcm_hf.training.data import subject_splits
    from lcm_hf.training.small_cohort import FIXED_BUDGET

    data_args, _, training = script_arguments(tmp_path)
    dataset = Dataset.from_dict({
        "subject_id": [f"s{i}" for i in range(48)], "diagnosis": ["ADHD" if i % 2 else "control" for i in range(48)],
        "connectivity": [np.eye(4, dtype=np.float32)] * 48, "labels": [[float(i % 2)] for i in range(48)]})
    runs = [subject_splits(DatasetDict({"train": dataset}), data_args)]
    data_args.cv_folds = 5
    runs += [dict(fold["adhd"]) for fold in fold_datasets({"adhd": dataset}, data_args)[0]]
    for parts in runs:
        n_validation = len(set(parts["validation"]["subject_id"]))
        out, used, sentence = apply_small_cohort_policy(parts, training, from_scratch=True)
        assert n_validation < MIN_VALIDATION_SUBJECTS and out["validation"] is None
        assert FIXED_BUDGET == {"num_train_epochs": 30.0, "per_device_train_batch_size": 32,
                                "lr_scheduler_type": "linear"}  # the nested study's choice
        assert (used.max_steps, used.num_train_epochs, used.per_device_train_batch_size) == (-1, 30.0, 32)
        assert str(used.lr_scheduler_type.value if hasattr(used.lr_scheduler_type, "value") else
                   used.lr_scheduler_type) == "linear"
        assert not used.load_best_model_at_end and used.eval_strategy == "no" and used.calibrate is False
        steps = 30 * -(-len(out["train"]) // 32)  # 30 epochs of ceil(windows / 32) steps
        assert sentence == (f"Small cohort ({n_validation} validation subjects, fewer than {MIN_VALIDATION_SUBJECTS}: "
                            f"too few to choose reliably): trained a fixed 30 epochs (about {steps} optimizer steps, "
                            "batch 32, linear learning rate: the small-cohort budget, --num_train_epochs or "
                            f"--max_steps to change) on the {48 - n_validation - len(set(parts['test']['subject_id']))}"
                            f" training + {n_validation} validation subjects, with no best-epoch selection, no early "
                            "stopping and no temperature fitted (--small_cohort_policy off to choose on validation).")
    assert training.load_best_model_at_end and training.eval_strategy == "epoch"  # the caller's untouched


@pytest.mark.parametrize("flags, steps, batch, schedule", [
    (["--num_train_epochs", "12"], -1, 16, "constant_with_warmup"),  # an epoch budget given: the user's
    (["--max_steps", "50", "--per_device_train_batch_size", "8"], 50, 8, "constant_with_warmup"),
    (["--max-steps=50", "--per-device-train-batch-size", "8"], 50, 8, "constant_with_warmup"),  # dashes: the same
    (["--num_train_epochs", "30", "--lr_scheduler_type", "linear"], -1, 16, "linear"),  # given, though the default
    ([], 200, 16, "constant_with_warmup"),  # none given: the budget's
])
def test_options_the_user_gave_win_over_the_budget(tmp_path, monkeypatch, flags, steps, batch, schedule):
    """Each budget option the user gave wins (shown with a budget unlike the defaults, e.g. the study's fixed_200)."""
    from lcm_hf.training import small_cohort

    monkeypatch.setattr(small_cohort, "FIXED_BUDGET", {"max_steps": 200, "per_device_train_batch_size": 16,
                                                       "lr_scheduler_type": "constant_with_warmup"})
    _, _, training = script_arguments(tmp_path, *flags)
    _, used, sentence = apply_small_cohort_policy(splits(30, 6), training, from_scratch=True)
    assert (used.max_steps, used.per_device_train_batch_size) == (steps, batch)
    assert str(getattr(used.lr_scheduler_type, "value", used.lr_scheduler_type)) == schedule
    if steps == -1:
        assert used.num_train_epochs == float(flags[1])
    assert ("the small-cohort budget" in sentence) == (not flags)


def test_finetuning_and_python_arguments_keep_their_budget(tmp_path, monkeypatch):
    """Finetuning (from_scratch False) keeps its epochs; arguments built in Python that set the budget keep it,
    those left at the defaults take the small-cohort budget (one unlike the defaults here)."""
    from lcm_hf.training import small_cohort

    FIXED_BUDGET = {"max_steps": 200, "per_device_train_batch_size": 16, "lr_scheduler_type": "constant_with_warmup"}
    monkeypatch.setattr(small_cohort, "FIXED_BUDGET", FIXED_BUDGET)

    _, used, _ = apply_small_cohort_policy(splits(30, 6), args(tmp_path))
    assert (used.max_steps, used.num_train_epochs, used.per_device_train_batch_size) == (-1, 10, 4)
    _, used, _ = apply_small_cohort_policy(splits(30, 6), args(tmp_path), from_scratch=True)
    assert (used.max_steps, used.num_train_epochs, used.per_device_train_batch_size) == (-1, 10, 4)
    defaults = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    _, used, _ = apply_small_cohort_policy(splits(30, 6), defaults, from_scratch=True)
    assert (used.max_steps, used.per_device_train_batch_size) == (FIXED_BUDGET["max_steps"],
                                                                  FIXED_BUDGET["per_device_train_batch_size"])
