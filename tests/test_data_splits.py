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
