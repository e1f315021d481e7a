"""A user's own dataset trains as published: build_dataset.py output -> pretrain.py -> finetune.py.

Each test pins one thing a new user hit: windowed datasets windowed again (crash), published splits ignored,
two dataset folders with one name collapsing into one dataset, `--new_beis` ignored.
"""

import json

import pytest
from own_data import TINY_MODEL, TINY_TRAINING, load_script, write_cohort

from lcm_hf.data import load_published


def build(tmp_path, name, *flags, source=None, **cohort):
    source = source or tmp_path / f"raw_{name}"
    table = write_cohort(source, **cohort)
    output = tmp_path / name
    load_script("processing/build_dataset.py").main(
        [str(source), "--phenotypes", table, "--output", str(output), *map(str, flags)]
    )
    return output


def pretrain(dataset_dirs, output, *extra):
    argv = ["--dataset_dirs", *map(str, dataset_dirs), "--categorical_columns", "sex", "--continuous_columns", "age",
            "--output_dir", str(output), *TINY_MODEL, *TINY_TRAINING, *extra]
    return load_script("training/pretrain.py").main(argv)


def test_a_windowed_published_dataset_trains_without_windowing_again(tmp_path):
    dataset = build(tmp_path, "windowed", "--window-size", "40")
    published = load_published(dataset)
    assert "window_index" in published["train"].column_names
    results = pretrain([dataset], tmp_path / "run", "--window_size", "30")  # not re-cut into 30-TR windows
    rows = sum(len(split) for split in published.values())
    assert sum(results["split_sizes"].values()) == rows


def test_published_splits_are_used_as_given(tmp_path):
    dataset = build(tmp_path, "split", "--test-size", "0.25", "--validation-size", "0.25", n_subjects=16)
    published = load_published(dataset)
    assert set(published) == {"train", "validation", "test"}
    results = pretrain([dataset], tmp_path / "run", "--window_size", "40")
    assert set(results["test_dataset"]["subject_id"]) == set(published["test"]["subject_id"])
    windows_per_scan = 80 // 40
    assert results["split_sizes"] == {split: windows_per_scan * len(published[split]) for split in published}


def test_two_dataset_folders_with_one_name_stay_two_datasets(tmp_path):
    first = build(tmp_path / "site_a", "cohort", seed=1)
    second = build(tmp_path / "site_b", "cohort", seed=2)
    results = pretrain([first, second], tmp_path / "run", "--window_size", "40")
    assert results["datasets"] == ["site_a/cohort", "site_b/cohort"]
    assert any(key.startswith("test_dataset/site_b/cohort/") for key in results["test_metrics"])


def test_new_beis_become_new_tokens_and_are_checked(tmp_path):
    dataset = build(tmp_path, "cohort")
    pretrained = tmp_path / "pretrained"
    pretrain([dataset], pretrained, "--window_size", "40")
    finetune = load_script("training/finetune.py")
    common = ["--model_name_or_path", str(pretrained), "--dataset_dirs", str(dataset), "--window_size", "40",
              "--categorical_columns", "sex", *TINY_TRAINING]
    results = finetune.main([*common, "--new_beis", "diagnosis", "--output_dir", str(tmp_path / "finetuned")])
    assert results["new_beis"] == ["diagnosis"]
    saved = json.loads((tmp_path / "finetuned" / "config.json").read_text())
    assert [bei["name"] for bei in saved["beis"]] == ["sex", "age", "diagnosis"]
    with pytest.raises(ValueError, match=r"--new_beis: expected BEIs the pretrained model lacks, got \['sex'\]"):
        finetune.main([*common, "--new_beis", "sex", "--output_dir", str(tmp_path / "again")])
