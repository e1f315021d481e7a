"""Evaluation levels, LCM vs baseline vs chance with bootstrap intervals, verdict words, the baseline's inner
grouped CV, the run report's history sentences (lcm_hf.training.evaluation / baseline / report)."""

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from lcm_hf.training.evaluation import (
    HeldOutPredictions,
    balanced_accuracy,
    bootstrap_indices,
    compare,
    level_samples,
    resolve_levels,
    roc_auc,
    verdict,
)
from lcm_hf.training.metrics import bei_metrics, classification_metrics

BINARY = [{"name": "condition", "kind": "categorical", "classes": ["up", "down"]}]


def _up_down_runs(n_subjects=6, seed=0):
    """Every subject has one 'up' (0) and one 'down' (1) run of two windows; the model is informative."""
    rng = np.random.default_rng(seed)
    subjects, scans, labels, p_down = [], [], [], []
    for s in range(n_subjects):
        for run, label in (("run-1", 0), ("run-2", 1)):
            for _ in range(2):
                subjects.append(f"sub-{s}")
                scans.append(run)
                labels.append(label)
                p_down.append(np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2), 0.01, 0.99))
    p_down = np.asarray(p_down)
    logits = np.log(np.stack([1 - p_down, p_down], axis=1))
    return logits, np.asarray(labels, float)[:, None], subjects, scans, p_down


def test_subject_with_up_and_down_runs_is_not_averaged_into_one_sample():
    logits, labels, subjects, scans, p_down = _up_down_runs()
    metrics = bei_metrics(logits, labels, BINARY, subject_ids=subjects, scan_ids=scans)
    assert not math.isnan(metrics["condition/subject/roc_auc"])
    # Reference: one sample per (subject, run), its two windows' probabilities averaged.
    keys = [f"{s}/{c}" for s, c in zip(subjects, scans)]
    order = list(dict.fromkeys(keys))
    mean_p = np.asarray([p_down[[k == key for k in keys]].mean() for key in order])
    truth = np.asarray([labels[keys.index(key), 0] for key in order])
    assert metrics["condition/scan/roc_auc"] == pytest.approx(roc_auc_score(truth, mean_p))
    assert metrics["condition/subject/roc_auc"] == pytest.approx(roc_auc_score(truth, mean_p))  # label kept apart
    values, targets, sample_subjects, _ = level_samples(
        "categorical", np.exp(logits), labels[:, 0], np.asarray(subjects), np.asarray(scans), "subject")
    assert len(targets) == 12 and sorted(targets.tolist()) == [0] * 6 + [1] * 6  # 2 samples per subject


def test_resolve_levels_picks_scan_for_labels_varying_within_a_subject():
    _, labels, subjects, scans, _ = _up_down_runs(3)
    beis = BINARY + [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}]
    sex = np.asarray([float(int(s[-1]) % 2) for s in subjects])[:, None]
    both = np.concatenate([labels, sex], axis=1)
    assert resolve_levels(both, beis, subjects, "auto", scan_ids=scans) == {"condition": "scan", "sex": "subject"}
    assert resolve_levels(both, beis, subjects, "auto") == {"condition": "subject", "sex": "subject"}  # no scan_id
    assert resolve_levels(both, beis, subjects, "scan", scan_ids=scans) == {"condition": "scan", "sex": "scan"}
    with pytest.raises(ValueError, match="--eval_level: expected one of"):
        resolve_levels(both, beis, subjects, "window", scan_ids=scans)


def test_fast_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    p = rng.dirichlet([1, 1], 40)
    assert balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p.argmax(1)))
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p[:, 1]))
    y3 = rng.choice([0, 2, 3], 60)  # class 1 absent: one-vs-rest over the classes present
    p3 = rng.dirichlet([1, 1, 1, 1], 60)
    reference = classification_metrics(y3, p3)
    assert roc_auc(y3, p3) == pytest.approx(reference["roc_auc"])
    assert balanced_accuracy(y3, p3) == pytest.approx(reference["balanced_accuracy"])


def test_bootstrap_resamples_whole_subjects_and_is_seeded():
    subjects = np.asarray(["a", "a", "b", "c", "c", "c"])
    first = list(bootstrap_indices(subjects, 50, seed=3))
    again = list(bootstrap_indices(subjects, 50, seed=3))
    other = list(bootstrap_indices(subjects, 50, seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))
    for sample in first:  # a chosen subject brings all its samples
        counts = {s: int((subjects[sample] == s).sum()) for s in "abc"}
        assert counts["a"] % 2 == 0 and counts["c"] % 3 == 0
        assert sum(c // {"a": 2, "b": 1, "c": 3}[s] for s, c in counts.items()) == 3


def test_verdict_words_follow_the_interval():
    assert verdict([0.01, 0.3]) == "LCM beats the baseline"
    assert verdict([-0.3, -0.01]) == "the baseline beats LCM"
    assert verdict([-0.1, 0.2]) == "no detectable difference from the baseline"
    assert verdict([-3.0, -1.0], higher_is_better=False) == "LCM beats the baseline"  # MAE: lower is better
    assert verdict([0.1, 0.2], against="chance") == "LCM beats chance"
    assert verdict([-0.2, -0.1], against="chance") == "LCM is below chance"
    assert verdict(None) == verdict([None, None]) == "too few test subjects to tell"


def _predictions(n_subjects=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(rng.integers(0, 2, n_subjects), 2).astype(float)
    age = np.repeat(rng.uniform(20, 60, n_subjects), 2)
    good = np.where(y == 1, 0.9, 0.1)
    noise = rng.uniform(0.2, 0.8, y.size)
    lcm = np.stack([np.log(1 - good), np.log(good), age + rng.normal(0, 1, y.size)], axis=1)
    base = np.stack([np.log(1 - noise), np.log(noise), np.full(y.size, 40.0)], axis=1)
    subjects = np.repeat([f"d::s{i}" for i in range(n_subjects)], 2)
    train_mean = np.tile([np.nan, 40.0], (y.size, 1))
    beis = BINARY + [{"name": "age", "kind": "continuous"}]
    return HeldOutPredictions(lcm, base, np.stack([y, age], 1), subjects, None, train_mean), beis


def test_compare_reports_chance_intervals_and_paired_difference():
    predictions, beis = _predictions()
    rows = {r["bei"]: r for r in compare(predictions, beis, {"condition": "subject", "age": "subject"}, 300, 0)}
    auc = rows["condition"]["metrics"]["roc_auc"]
    assert auc["lcm"]["value"] == 1.0 and auc["chance"]["value"] == 0.5
    assert auc["difference"]["ci"][0] > 0 and auc["verdict"] == "LCM beats the baseline"
    assert auc["verdict_chance"] == "LCM beats chance"
    assert rows["condition"]["metrics"]["balanced_accuracy"]["chance"]["value"] == 0.5
    mae = rows["age"]["metrics"]["mae"]
    ages = predictions.labels[::2, 1]
    assert mae["chance"]["value"] == pytest.approx(np.abs(ages - 40.0).mean())  # predicting the training mean
    assert mae["baseline"]["value"] == pytest.approx(mae["chance"]["value"])
    assert mae["verdict"] == "LCM beats the baseline"  # lower MAE
    low, high = auc["lcm"]["ci"]
    assert low <= auc["lcm"]["value"] <= high

    same = HeldOutPredictions(predictions.lcm, predictions.lcm, predictions.labels, predictions.subjects, None,
                           predictions.train_mean)
    tie = compare(same, beis, {}, 200, 0)[0]["metrics"]["roc_auc"]
    assert tie["difference"]["ci"] == [0.0, 0.0] and tie["verdict"] == "no detectable difference from the baseline"


def test_too_few_subjects_give_no_interval_and_no_beats():
    predictions, beis = _predictions(n_subjects=6)
    auc = compare(predictions, beis, {}, 200, 0)[0]["metrics"]["roc_auc"]
    assert auc["lcm"]["value"] == 1.0 and auc["lcm"]["ci"] == [None, None]
    assert auc["verdict"] == auc["verdict_chance"] == "too few test subjects to tell"


def test_history_sentences_say_when_validation_loss_rose_and_what_was_kept():
    from lcm_hf.training.report import history_sentences

    history = [{"epoch": 1.0, "step": 10, "eval_loss": 1.6}, {"epoch": 2.0, "step": 20, "eval_loss": 2.0},
               {"epoch": 3.0, "step": 30, "eval_loss": 4.5}, {"epoch": 3.0, "train_loss": 0.1}]
    rose, last = history_sentences(history)
    assert "rose" in rose and "epoch 1 (1.600)" in rose and "4.500 at the last evaluation (epoch 3)" in rose
    assert "end of training (epoch 3)" in last
    kept = history_sentences(history, "/runs/x/checkpoint-10", kept_best=True)[1]
    assert "best validation checkpoint, `checkpoint-10` (epoch 1)" in kept
    assert "did not rise" in history_sentences(history[:1])[0]


def test_baseline_chooses_its_strength_by_inner_grouped_cv():
    from sklearn.model_selection import GroupKFold

    from lcm_hf.training.baseline import LOGISTIC_C, choose_strength, make_model

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 3)
    y = np.repeat(rng.integers(0, 2, 12), 3)
    x = rng.normal(size=(36, 20)) + y[:, None] * 0.5
    strength, scores = choose_strength("categorical", x, y, groups, num_classes=2, inner_folds=4)
    reference = {}
    for c in LOGISTIC_C:  # the same choice, by hand
        losses = []
        for train, test in GroupKFold(n_splits=4).split(x, y, groups):
            p = make_model("categorical", c).fit(x[train], y[train]).predict_proba(x[test])
            losses.append(-np.mean(np.log(np.clip(p[np.arange(len(test)), y[test]], 1e-9, None))))
        reference[c] = -np.mean(losses)
    assert scores == pytest.approx(reference)
    assert strength == max(LOGISTIC_C, key=lambda c: (reference[c], -c))


def test_weighted_bootstrap_equals_scoring_the_repeated_samples():
    from lcm_hf.training.evaluation import _resampled_scores, _scores, bootstrap_counts

    rng = np.random.default_rng(2)
    subjects = np.repeat([f"s{i}" for i in range(15)], 2)
    y2, y3 = rng.integers(0, 2, 30), rng.integers(0, 3, 30)
    p2, p3 = rng.dirichlet([1, 1], (30, 2)).transpose(0, 2, 1), rng.dirichlet([1, 1, 1], (30, 2)).transpose(0, 2, 1)
    p2[:4] = p2[4:8]  # ties
    values = rng.normal(size=(30, 2))
    truth = values[:, 0] + rng.normal(size=30)
    chance = np.full(30, 0.3)
    counts = bootstrap_counts(subjects, 40, seed=5)
    for metric, v, t in [("balanced_accuracy", p3, y3), ("roc_auc", p2, y2), ("roc_auc", p3, y3),
                         ("mae", values, truth), ("pearson_r", values, truth)]:
        expected = [_scores(metric, v[i], t[i], chance[i]) for i in bootstrap_indices(subjects, 40, seed=5)]
        np.testing.assert_allclose(_resampled_scores(metric, v, t.astype(float), chance, counts), expected,
                                   rtol=1e-9, atol=1e-12, err_msg=metric)
