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
