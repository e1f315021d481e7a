"""A user's own dataset trains as published: build_dataset.py output -> pretrain.py -> finetune.py.

Each test pins one thing a new user hit: windowed datasets windowed again (crash), published splits ignored,
two dataset folders with one name collapsing into one dataset, `--new_beis` ignored.
"""

import json

import pytest
from own_data import TINY_MODEL, TINY_TRAINING, load_script, write_cohort

from lcm_hf.data import class_counts, load_published


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
    # stratified by default on the first categorical phenotype column (sex: 8 F, 8 M), issue 18
    counts = {split: class_counts(published[split], "sex") for split in published}
    assert counts == {"train": {"F": 4, "M": 4}, "validation": {"F": 2, "M": 2}, "test": {"F": 2, "M": 2}}
    results = pretrain([dataset], tmp_path / "run", "--window_size", "40")
    assert set(results["test_dataset"]["subject_id"]) == set(published["test"]["subject_id"])
    windows_per_scan = 80 // 40
    # 4 validation subjects are too few to choose on: the small-cohort policy trains on them too (issue 18)
    assert results["split_sizes"] == {"train": windows_per_scan * (len(published["train"]) + len(published["validation"])),
                                      "test": windows_per_scan * len(published["test"])}


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



STRATEGY_FLAGS = ["--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "epoch"]


@pytest.mark.slow
def test_checkpoints_every_few_steps_with_evaluation_per_epoch(tmp_path):
    """`--save_strategy steps --eval_strategy epoch` (checkpoint often) trains: model selection, which needs a
    checkpoint at every evaluation, is turned off and one line says so and what to pass. The summary and the
    report say which readout schedule ran."""
    from own_data import run_script

    dataset = build(tmp_path, "cohort")
    process = run_script(
        "training/pretrain.py", "--dataset_dirs", dataset, "--categorical_columns", "sex", "--output_dir",
        tmp_path / "run", *TINY_MODEL, *TINY_TRAINING, "--window_size", "40", *STRATEGY_FLAGS)
    said = [line for line in process.stderr.splitlines() if "--save_strategy steps and --eval_strategy epoch" in line]
    assert len(said) == 1 and said[0].startswith("warning: ") and "the last model is kept" in said[0], process.stderr
    assert "--save_strategy epoch --eval_strategy epoch" in said[0]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model_selection"]["kept"] == "last"
    summary = json.loads(process.stdout.strip().splitlines()[-1])
    assert summary["schedule"]["momentum_epochs"] == 1 and summary["schedule"]["momentum_from"] == "the training arguments"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["schedule"]["readout_policy"] == saved["readout_policy"] and saved["momentum_epochs"] == 1
    assert "Readout schedule: policy" in (tmp_path / "run" / "report.md").read_text()


def test_strategy_mismatch_with_early_stopping_is_refused_in_one_line(tmp_path):
    """Early stopping needs model selection: the mismatch is refused before any data is read, naming the flags."""
    from own_data import run_script

    refused = run_script("training/pretrain.py", "--dataset_dirs", tmp_path / "not_read", "--output_dir",
                         tmp_path / "run", *TINY_TRAINING, *STRATEGY_FLAGS, "--early_stopping_patience", "2",
                         check=False)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: --save_strategy steps and --eval_strategy epoch: model selection needs")
    assert "pass --save_strategy epoch --eval_strategy epoch" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, kept", [
    (dict(save_strategy="steps", save_steps=2, eval_strategy="epoch"), False),
    (dict(save_strategy="steps", save_steps=3, eval_strategy="steps", eval_steps=2), False),
    (dict(save_strategy="steps", save_steps=4, eval_strategy="steps", eval_steps=2), True),
    (dict(save_strategy="epoch", eval_strategy="no"), False),
    (dict(save_strategy="epoch", eval_strategy="epoch"), True),
])
def test_model_selection_follows_the_strategies(tmp_path, flags, kept):
    import warnings

    from lcm_hf.training.arguments import LcmTrainingArguments

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **flags)
    assert args.load_best_model_at_end is kept
    said = [str(w.message) for w in caught if "load_best_model_at_end off" in str(w.message)]
    assert len(said) == (0 if kept else 1), said


def test_a_starting_model_that_saw_the_test_subjects_is_refused_or_reported_optimistic(tmp_path, capsys):
    """Issue 18: the model records (hashed) whose labels it saw; a finetune whose test subjects are among them is
    refused with the count and the way out, or, with --allow_subject_overlap, runs with every report marked."""
    import hashlib

    dataset = build(tmp_path, "leak_cohort", n_subjects=16)
    pretrained = tmp_path / "pretrained"
    results = pretrain([dataset], pretrained, "--window_size", "40")
    # 2 validation subjects: the small-cohort policy trains on them too, without selection or calibration
    assert results["small_cohort_policy"].startswith("Small cohort (2 validation subjects, fewer than 20")
    assert results["small_cohort_policy"] in capsys.readouterr().out
    assert results["model_selection"]["kept"] == "last" and "calibration" not in results
    assert results["small_cohort_policy"] in (pretrained / "report.md").read_text()

    everyone = set(load_published(dataset)["train"]["subject_id"])
    pretrain_test = set(results["test_dataset"]["subject_id"])
    record = json.loads((pretrained / "config.json").read_text())["training_subjects"]
    digest = lambda s: hashlib.sha256(f"leak_cohort/{s}".encode()).hexdigest()[:16]  # noqa: E731
    assert record["datasets"]["leak_cohort"]["train"] == sorted(digest(s) for s in everyone - pretrain_test)
    assert record["datasets"]["leak_cohort"]["validation"] == []

    finetune = load_script("training/finetune.py")
    common = ["--model_name_or_path", str(pretrained), "--dataset_dirs", str(dataset), "--window_size", "40",
              "--categorical_columns", "sex", "--new_beis", "diagnosis", "--split_seed", "1", *TINY_TRAINING]
    with pytest.raises(ValueError, match=r"^the starting model \(--model_name_or_path\) saw the labels of (\d+) of "
                                         r"(\d+) test subjects: .*pass --allow_subject_overlap") as refused:
        finetune.main([*common, "--output_dir", str(tmp_path / "leaky")])
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="saw the labels of"):  # every fold of a CV is checked too
        finetune.main([*common, "--cv_folds", "2", "--output_dir", str(tmp_path / "leaky_cv")])

    # guard off: a scratch start (the guard's choice on 14 subjects) would rightly not be marked optimistic
    forced = finetune.main([*common, "--allow_subject_overlap", "--init_guard_folds", "0",
                            "--output_dir", str(tmp_path / "forced")])
    test = set(forced["test_dataset"]["subject_id"])
    seen = len(test - pretrain_test)
    assert seen > 0 and f"saw the labels of {seen} of {len(test)} test subjects" in str(refused.value)
    sentence = f"optimistic: the starting model saw {seen} of {len(test)} test subjects"
    assert forced["optimistic"] == sentence and sentence in (tmp_path / "forced" / "report.md").read_text()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["optimistic"] == sentence
    finetuned = json.loads((tmp_path / "forced" / "config.json").read_text())["training_subjects"]
    assert set(record["datasets"]["leak_cohort"]["train"]) <= set(finetuned["datasets"]["leak_cohort"]["train"])

    # The same split as pretraining (--split_seed 0, the same first categorical column): nothing seen, no mark.
    clean = finetune.main([*common[:-len(TINY_TRAINING) - 2], *TINY_TRAINING, "--output_dir", str(tmp_path / "ok")])
    assert clean["subject_overlap"]["test"] == [0, len(pretrain_test)] and clean["optimistic"] is None
