"""--cv_folds in training/finetune.py and training/pretrain.py: subject-grouped folds, per-fold and pooled
reports with LCM, baseline and chance, and the baseline checked against scikit-learn run directly."""

import json

import numpy as np
import pytest
from test_training_scripts import load_script

TINY = [
    "--demo", "--demo_subjects", "12", "--num_train_epochs", "1", "--momentum_epochs", "0", "--use_cpu",
    "--report_to", "none", "--save_strategy", "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true",
    "--bootstrap_resamples", "200",
]


def _demo(names, subjects=12):
    from lcm_hf.demo import apply_demo_defaults, demo_datasets
    from lcm_hf.training.arguments import LcmDataArguments

    data_args = LcmDataArguments(demo=True, demo_subjects=subjects, demo_datasets=names)
    datasets = demo_datasets("finetune", data_args)
    apply_demo_defaults(data_args, datasets)
    return datasets, data_args


def test_folds_are_subject_grouped_seeded_and_leave_published_test_out():
    from datasets import DatasetDict

    from lcm_hf.training.cross_validation import fold_datasets

    datasets, data_args = _demo(["ppmi_like"])
    data_args.cv_folds = 3
    folds, description = fold_datasets(datasets, data_args)
    everyone = set(datasets["ppmi_like"]["subject_id"])
    tests = [set(fold["ppmi_like"]["test"]["subject_id"]) for fold in folds]
    assert set().union(*tests) == everyone and sum(map(len, tests)) == len(everyone)  # each subject tested once
    for fold in folds:
        parts = {split: set(fold["ppmi_like"][split]["subject_id"]) for split in ("train", "validation", "test")}
        assert parts["train"] and parts["validation"] and parts["test"]
        assert not (parts["train"] & parts["validation"] or parts["train"] & parts["test"]
                    or parts["validation"] & parts["test"])
    assert description["stratified_by"] == {"ppmi_like": ["parkinson"]}
    data_args.split_seed = 1
    other = [set(fold["ppmi_like"]["test"]["subject_id"]) for fold in fold_datasets(datasets, data_args)[0]]
    assert sorted(map(sorted, other)) != sorted(map(sorted, tests))  # another seed, other folds

    published = {"ppmi_like": DatasetDict({"train": datasets["ppmi_like"].select(range(9)),
                                           "test": datasets["ppmi_like"].select(range(9, 12))})}
    folds, description = fold_datasets(published, data_args)
    held = set(published["ppmi_like"]["test"]["subject_id"])
    assert description["held_out_test_rows"] == {"ppmi_like": 3}
    assert all(not held & set(f["ppmi_like"][s]["subject_id"]) for f in folds for s in ("train", "validation", "test"))
    data_args.cv_folds = 1
    with pytest.raises(ValueError, match="--cv_folds: expected an integer >= 2"):
        fold_datasets(datasets, data_args)


def _reference_baseline(fold, classes, window_size=90):
    """FC + standardised logistic regression with C chosen by GroupKFold, written with numpy / scikit-learn
    only; returns (subject-level balanced accuracy, ROC-AUC, chosen C) of parkinson on the fold's test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def windows(dataset):
        x, y, groups = [], [], []
        for row in dataset:
            series = np.asarray(row["timeseries"], dtype=np.float32)
            for start in range(0, series.shape[0] - window_size + 1, window_size):
                fc = np.corrcoef(series[start:start + window_size].T.astype(np.float64)).astype(np.float32)
                x.append(fc[np.triu_indices(fc.shape[0], 1)])
                y.append(classes.index(row["parkinson"]))
                groups.append(row["subject_id"])
        return np.asarray(x, dtype=np.float64), np.asarray(y), np.asarray(groups)

    from datasets import concatenate_datasets

    # The folds' 1-2 validation subjects are too few to choose on: the small-cohort policy trains LCM, and so fits
    # the baseline, on the training and validation subjects together.
    x, y, groups = windows(concatenate_datasets([fold["train"], fold["validation"]]))
    x_test, y_test, test_groups = windows(fold["test"])
    losses = {}
    for c in (0.001, 0.01, 0.1, 1.0):
        fold_losses = []
        for train, held in GroupKFold(n_splits=min(5, len(set(groups)))).split(x, y, groups):
            if len(set(y[train])) < 2:
                continue
            head = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
            model = make_pipeline(StandardScaler(), head).fit(x[train], y[train])
            p = np.full((len(held), 2), 1e-9)
            p[:, model.classes_] = model.predict_proba(x[held])
            fold_losses.append(-np.mean(np.log(np.clip(p[np.arange(len(held)), y[held]], 1e-9, None))))
        losses[c] = np.mean(fold_losses)
    best = min(losses, key=lambda c: (losses[c], c))
    head = LogisticRegression(C=best, class_weight="balanced", max_iter=2000)
    model = make_pipeline(StandardScaler(), head).fit(x, y)
    p_test = model.predict_proba(x_test)[:, list(model.classes_).index(1)]
    subjects = sorted(set(test_groups))
    mean_p = np.asarray([p_test[test_groups == s].mean() for s in subjects])
    truth = np.asarray([y_test[test_groups == s][0] for s in subjects])
    predicted = (mean_p > 0.5).astype(int)
    balanced = np.mean([(predicted[truth == k] == k).mean() for k in np.unique(truth)])
    return balanced, roc_auc_score(truth, mean_p), best


def _pretrained(folder):
    """A tiny untrained 'pretrained' model knowing sex (the demo's 116 ROIs): finetuning adds the rest."""
    import torch

    from lcm_hf import LcmConfig, LcmForBeiPrediction, LcmProcessor

    beis = [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}]
    torch.manual_seed(0)
    config = LcmConfig(num_rois=116, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, beis=beis)
    LcmForBeiPrediction(config).save_pretrained(folder)
    LcmProcessor(vocabulary=beis, num_rois=116).save_pretrained(folder)
    return folder


def test_finetune_cv_report_has_lcm_baseline_chance_and_matches_scikit_learn(tmp_path):
    from lcm_hf.training.cross_validation import fold_datasets

    pretrained = _pretrained(tmp_path / "pretrained")
    output = tmp_path / "cv"
    load_script("finetune").main(TINY + ["--model_name_or_path", str(pretrained), "--cv_folds", "2",
                                         "--output_dir", str(output)])
    cv = json.loads((output / "cv_results.json").read_text())
    report = (output / "cv_report.md").read_text()
    assert "## All folds pooled" in report and "LCM - baseline [95% CI]" in report and "Mean ± sd" in report
    assert "one prediction per subject" in report
    pooled = {row["bei"]: row for row in cv["pooled"]}
    auc = pooled["parkinson"]["metrics"]["roc_auc"]
    assert pooled["parkinson"]["subjects"] == 12 and auc["chance"]["value"] == 0.5
    # 8 PD and 4 controls in all: fewer than MIN_CLASS_SUBJECTS controls, so no interval and no verdict (issue 18)
    counts = [fold["class_counts"]["parkinson"]["test"] for fold in cv["folds"]]
    assert sum(c["control"] for c in counts) == 4 and sum(c["PD"] for c in counts) == 8
    assert auc["lcm"]["ci"] == [None, None] and auc["difference"]["ci"] == [None, None]
    assert auc["verdict"] == auc["verdict_chance"] == "too few test subjects to tell" and auc["verdict_from"] == "folds"
    assert cv["verdicts"]["parkinson"]["roc_auc"]["verdict"] == "too few test subjects to tell"
    assert "fold mean ± sd" in report and "control 2" in report and "parkinson PD 8, control 4" in report
    for k in range(2):
        assert (output / f"fold-{k}" / "report.md").is_file() and (output / f"fold-{k}" / "results.json").is_file()
    assert len(cv["mean_sd"]["parkinson"]["roc_auc"]["baseline"]["folds"]) == 2

    # The baseline numbers against scikit-learn run directly on the same folds and training subjects.
    datasets, data_args = _demo(["ppmi_like"])
    data_args.cv_folds = 2
    classes = json.loads((output / "fold-0" / "config.json").read_text())
    classes = next(b["classes"] for b in classes["beis"] if b["name"] == "parkinson")
    for k, fold in enumerate(fold_datasets(datasets, data_args)[0]):
        results = json.loads((output / f"fold-{k}" / "results.json").read_text())
        row = next(r for r in results["evaluation"]["comparison"] if r["bei"] == "parkinson")
        balanced, auc_value, c = _reference_baseline(fold["ppmi_like"], classes)
        assert results["evaluation"]["baseline"]["strengths"]["parkinson"] == c
        assert row["metrics"]["roc_auc"]["baseline"]["value"] == pytest.approx(auc_value, abs=1e-6)
        assert row["metrics"]["balanced_accuracy"]["baseline"]["value"] == pytest.approx(balanced, abs=1e-6)
        assert cv["folds"][k]["comparison"] == results["evaluation"]["comparison"]


def _runs_dataset(folder, n_subjects=12, rois=12, seed=0):
    """A saved dataset: every subject has an 'up' and a 'down' run (task condition varies within subjects)."""
    from datasets import Dataset

    from lcm_hf.data.schema import connectome_features

    rng = np.random.default_rng(seed)
    rows = {"subject_id": [], "scan_id": [], "dataset": [], "site": [], "timeseries": [], "condition": [], "sex": []}
    for s in range(n_subjects):
        for run, condition in (("run-1", "up"), ("run-2", "down")):
            series = rng.standard_normal((60, rois)).astype(np.float32)
            if condition == "up":
                series[:, 1] += series[:, 0]  # a condition effect on one edge
            rows["subject_id"].append(f"sub-{s:02d}")
            rows["scan_id"].append(run)
            rows["dataset"].append("runs")
            rows["site"].append("a")
            rows["timeseries"].append(series)
            rows["condition"].append(condition)
            rows["sex"].append("F" if s % 2 else "M")
    features = connectome_features(rois, {"condition": "string", "sex": "string"}, scan_id=True)
    Dataset.from_dict(rows, features=features).save_to_disk(str(folder))
    return folder


@pytest.mark.slow  # ~6 s on a quiet machine, 20 s on a loaded one; the unit test in test_evaluation.py is fast
def test_eval_level_auto_scores_within_subject_labels_per_scan(tmp_path):
    data = _runs_dataset(tmp_path / "runs")
    output = tmp_path / "model"
    argv = [a for a in TINY if a not in ("--demo", "--demo_subjects", "12")] + [
        "--dataset_dirs", str(data), "--categorical_columns", "condition", "sex", "--window_size", "30",
        "--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--validation_fraction", "0.2", "--test_fraction", "0.4", "--output_dir", str(output)]
    load_script("pretrain").main(argv)
    results = json.loads((output / "results.json").read_text())
    assert results["evaluation"]["levels"] == {"condition": "scan", "sex": "subject"}
    condition = next(r for r in results["evaluation"]["comparison"] if r["bei"] == "condition")
    test_subjects = condition["subjects"]
    assert condition["samples"] == 2 * test_subjects  # one 'up' and one 'down' scan per subject, never averaged
    assert results["test_metrics"]["test_condition/subject/roc_auc"] is not None  # not NaN
    report = (output / "report.md").read_text()
    assert "one prediction per scan (its windows averaged) for condition" in report
    assert "one prediction per subject (its windows averaged) for sex" in report


def test_scripts_splits_and_folds_stratify_on_the_first_categorical_target_by_default():
    from test_data_splits import cohort, subjects_per_class

    from lcm_hf.training.arguments import LcmDataArguments
    from lcm_hf.training.cross_validation import fold_datasets
    from lcm_hf.training.data import subject_splits

    data = {"dx": __import__("datasets").DatasetDict({"train": cohort(16, 16)})}
    args = LcmDataArguments(categorical_columns=["dx", "sex"], validation_fraction=0.25, test_fraction=0.25)
    for seed in range(3):
        args.split_seed = seed
        splits = subject_splits(data["dx"], args)
        assert subjects_per_class(splits["test"]) == {"patient": 4, "control": 4}
        assert subjects_per_class(splits["validation"]) == {"patient": 4, "control": 4}
    args.cv_folds = 4
    folds, description = fold_datasets(data, args)
    assert description["stratified_by"] == {"dx": ["dx"]} and description["stratify_default"] is True
    assert all(subjects_per_class(f["dx"]["test"]) == {"patient": 4, "control": 4} for f in folds)
    args.stratify_column = ["sex"]  # given explicitly: it wins
    assert fold_datasets(data, args)[1]["stratified_by"] == {"dx": ["sex"]}


def test_cv_verdicts_come_from_a_corrected_t_interval_over_folds():
    from scipy import stats

    from lcm_hf.training.cv_report import fold_interval, fold_verdicts

    differences = [0.12, 0.05, 0.20, 0.09, 0.15]
    k = len(differences)
    half = stats.t.ppf(0.975, k - 1) * np.std(differences, ddof=1) * np.sqrt(1 / k + 1 / (k - 1))
    interval = fold_interval(differences, k)
    assert interval["ci"] == pytest.approx([np.mean(differences) - half, np.mean(differences) + half])
    assert fold_interval([0.1, None], 2)["ci"] is None  # one fold with a value: no interval

    def cell(values):
        return {"folds": values}
    table = {"dx": {"roc_auc": {"lcm": cell([0.9, 0.85, 0.95, 0.8, 0.9]), "chance": cell([0.5] * 5),
                                "baseline": cell([0.78, 0.8, 0.75, 0.71, 0.75]),
                                "difference": cell(differences)}}}
    enough = fold_verdicts(table, 5, {"dx": {"patient": 12, "control": 12}})["dx"]["roc_auc"]
    assert enough["verdict"] == "LCM beats the baseline" and enough["verdict_chance"] == "LCM beats chance"
    few = fold_verdicts(table, 5, {"dx": {"patient": 4, "control": 20}})["dx"]["roc_auc"]
    assert few["verdict"] == few["verdict_chance"] == "too few test subjects to tell"


def test_level_sentence_gives_the_reason_of_the_levels_chosen():
    from lcm_hf.training.report import level_sentence

    subject = level_sentence({"dx": "subject", "sex": "subject"})
    assert "constant within each subject" in subject and "vary within" not in subject
    mixed = level_sentence({"task": "scan", "sex": "subject"})
    assert "task vary within a subject, so they are scored per scan" in mixed
    assert "(--eval_level scan)" in level_sentence({"task": "scan"}, "scan")
