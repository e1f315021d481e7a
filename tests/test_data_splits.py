"""Grouped cross-validation folds (seeded, shuffled, grouped) and splits named by a column (issue 9, item 4)."""

import pytest
from datasets import Dataset

from lcm_hf.data import check_no_leakage, grouped_kfold, split_by_column


def scans(n_subjects=20, runs=2):
    subjects = [f"s{i:02d}" for i in range(n_subjects) for _ in range(runs)]
    return Dataset.from_dict({"subject_id": subjects, "scan_id": [f"run-{r}" for _ in range(n_subjects)
                                                                  for r in range(runs)],
                              "site": [f"site{int(s[1:]) % 4}" for s in subjects],
                              "dx": ["a" if int(s[1:]) % 2 else "b" for s in subjects]})


def test_kfold_without_stratify_uses_the_seed():
    """Today GroupKFold ignores the seed: repeated CV repeats one split."""
    ds = scans()

    def test_subjects(seed):
        return [sorted(set(f["test"]["subject_id"])) for f in grouped_kfold(ds, 5, seed=seed)]

    assert test_subjects(0) == test_subjects(0)
    assert test_subjects(0) != test_subjects(1)
    assert len({str(test_subjects(s)) for s in range(5)}) == 5
    folds = grouped_kfold(ds, 5, seed=3)
    tested = [s for f in folds for s in f["test"]["subject_id"]]
    assert sorted(tested) == sorted(ds["subject_id"])  # every row tested exactly once
    for fold in folds:
        check_no_leakage(fold)
        assert len(fold["test"]) == 8 and len(fold["train"]) == 32  # balanced: 4 subjects x 2 runs


def test_kfold_stratified_and_by_site_and_errors():
    ds = scans()
    a, b = grouped_kfold(ds, 4, stratify_by="dx", seed=0), grouped_kfold(ds, 4, stratify_by="dx", seed=1)
    assert [f["test"]["subject_id"] for f in a] != [f["test"]["subject_id"] for f in b]
    for fold in a:
        check_no_leakage(fold)
        assert set(fold["test"]["dx"]) == {"a", "b"}
    for fold in grouped_kfold(ds, 4, group_by="site", seed=2):
        check_no_leakage(fold, "site")
        assert len(set(fold["test"]["site"])) == 1
    with pytest.raises(ValueError, match=r"expected 2 <= n_splits <= 4 \(the number of site groups\), got 5"):
        grouped_kfold(ds, 5, group_by="site")
    with pytest.raises(ValueError, match=r"expected stratify_by column 'DX' in the dataset, got none; close matches: "
                                         r"\['dx'\]"):
        grouped_kfold(ds, 3, stratify_by="DX")


def test_split_by_column():
    ds = scans(6).add_column("split", ["test"] * 4 + ["train"] * 6 + ["validation"] * 2)
    splits = split_by_column(ds)
    assert list(splits) == ["train", "validation", "test"]
    assert splits["test"]["subject_id"] == ["s00", "s00", "s01", "s01"] and "split" not in splits["train"].column_names
    leaky = scans(2).add_column("split", ["train", "test", "train", "train"])
    with pytest.raises(ValueError, match="expected each subject_id in one split, got 's00'"):
        split_by_column(leaky)
    with pytest.raises(ValueError, match="expected a split name in column 'split' on every row, got 1 empty"):
        split_by_column(scans(2).add_column("split", ["train", "train", None, "test"]))


def cohort(n_patients, n_controls, runs=2):
    """``runs`` rows per subject; dx 'patient' / 'control' in the given numbers, sex alternating."""
    n = n_patients + n_controls
    dx = ["patient"] * n_patients + ["control"] * n_controls
    return Dataset.from_dict({
        "subject_id": [f"s{i:02d}" for i in range(n) for _ in range(runs)],
        "site": ["a"] * (n * runs),
        "age": [float(20 + i) for i in range(n) for _ in range(runs)],
        "sex": ["FM"[i % 2] for i in range(n) for _ in range(runs)],
        "dx": [d for d in dx for _ in range(runs)],
    })


def subjects_per_class(ds, column="dx"):
    from collections import Counter

    return dict(Counter(dict(zip(ds["subject_id"], ds[column])).values()))


def test_grouped_split_stratifies_by_subject_counts_and_keeps_a_rare_class_on_both_sides():
    from lcm_hf.data import grouped_split

    for seed in range(5):  # 16:16 with a quarter held out: 4 patients and 4 controls, whatever the seed
        splits = grouped_split(cohort(16, 16), 0.25, 0.0, stratify_by="dx", seed=seed)
        check_no_leakage(splits)
        assert subjects_per_class(splits["test"]) == {"patient": 4, "control": 4}
    # 3 patients of 30: the held-out tenth gets one (its share, 0.3, rounded up rather than none), train keeps two
    splits = grouped_split(cohort(3, 27), 0.1, 0.1, stratify_by="dx", seed=0)
    assert subjects_per_class(splits["test"]) == {"patient": 1, "control": 2}
    assert subjects_per_class(splits["validation"]) == {"patient": 1, "control": 2}
    assert subjects_per_class(splits["train"]) == {"patient": 1, "control": 23}
    first = grouped_split(cohort(16, 16), 0.25, 0.0, stratify_by="dx", seed=0)["test"]["subject_id"]
    assert first != grouped_split(cohort(16, 16), 0.25, 0.0, stratify_by="dx", seed=1)["test"]["subject_id"]


def test_grouped_kfold_stratified_folds_differ_by_at_most_one_subject_per_class():
    for n_patients, n_controls, k in ((23, 25, 5), (7, 30, 4), (10, 10, 3)):
        folds = grouped_kfold(cohort(n_patients, n_controls), k, stratify_by="dx", seed=0)
        counts = [subjects_per_class(f["test"]) for f in folds]
        for label, total in (("patient", n_patients), ("control", n_controls)):
            per_fold = [c.get(label, 0) for c in counts]
            assert sum(per_fold) == total and max(per_fold) - min(per_fold) <= 1, (label, per_fold)


def test_default_stratify_column_is_the_first_categorical_phenotype():
    from lcm_hf.data import class_counts, default_stratify_column

    ds = cohort(4, 4)
    assert default_stratify_column(ds) == "sex"  # not subject_id / site, not the numeric age
    assert default_stratify_column(ds.remove_columns("sex")) == "dx"
    free_text = ds.remove_columns(["sex", "dx"]).add_column("note", [f"n{i}" for i in range(len(ds))])
    assert default_stratify_column(free_text) is None
    assert class_counts(ds, "dx") == {"control": 4, "patient": 4}
