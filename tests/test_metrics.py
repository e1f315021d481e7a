"""lcm_hf.training.metrics: per-BEI, per-layer, window- and subject-level metrics."""

import math

import numpy as np
import pytest

from lcm_hf.training.metrics import (
    bei_metrics,
    best_layers,
    classification_metrics,
    group_mean,
    regression_metrics,
)

BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "dx", "kind": "categorical", "classes": ["a", "b", "c"]},
    {"name": "age", "kind": "continuous"},
]


def test_classification_metrics_known_values():
    y = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    m = classification_metrics(y, probabilities)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["roc_auc"] == pytest.approx(1.0)  # the scores rank perfectly even though one is misclassified


def test_multiclass_auc_with_a_missing_class_and_single_class_nan():
    y = np.array([0, 0, 2, 2])  # class 1 absent
    probabilities = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    assert classification_metrics(y, probabilities)["roc_auc"] == pytest.approx(1.0)
    assert math.isnan(classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))["roc_auc"])


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert m["mae"] == pytest.approx(1.0) and m["pearson_r"] == pytest.approx(1.0)
    assert math.isnan(regression_metrics([1.0, 2.0], [5.0, 5.0])["pearson_r"])


def test_group_mean_keeps_first_seen_order():
    groups, means = group_mean(np.array([[1.0], [3.0], [10.0]]), ["s2", "s2", "s1"])
    assert groups.tolist() == ["s2", "s1"] and means[:, 0].tolist() == [2.0, 10.0]


def _logits_for(labels_sex, labels_dx, ages):
    """Reduced logits (n, 6) that put most mass on the given classes."""
    n = len(labels_sex)
    logits = np.zeros((n, 6))
    logits[np.arange(n), labels_sex] = 2.0
    logits[np.arange(n), 2 + np.asarray(labels_dx)] = 2.0
    logits[:, 5] = ages
    return logits


def test_bei_metrics_masks_missing_labels_and_averages_windows_per_subject():
    # Two windows per subject; subject s1's windows disagree, their average decides.
    labels = np.array([[0, 0, 30.0], [0, 0, 30.0], [1, np.nan, 40.0], [1, np.nan, 40.0]], dtype=float)
    logits = _logits_for([0, 1, 1, 1], [0, 0, 0, 0], [31.0, 29.0, 41.0, 43.0])
    logits[1, 0] = 1.0  # s0's second window: wrong but less confident -> subject average is right
    m = bei_metrics(logits, labels, BEIS, subject_ids=["s0", "s0", "s1", "s1"])
    assert m["sex/accuracy"] == pytest.approx(0.75)
    assert m["sex/subject/accuracy"] == pytest.approx(1.0)
    assert m["dx/accuracy"] == pytest.approx(1.0)  # only the two labelled windows count
    assert m["age/mae"] == pytest.approx((1 + 1 + 1 + 3) / 4)
    assert m["age/subject/mae"] == pytest.approx((0 + 2) / 2)
    assert "mean/balanced_accuracy" in m and "age/roc_auc" not in m


def test_bei_metrics_per_layer_and_per_dataset():
    labels = np.array([[0, 1, 20.0], [1, 2, 30.0], [0, 0, 40.0], [1, 1, 50.0]])
    good = _logits_for([0, 1, 0, 1], [1, 2, 0, 1], [20.0, 30.0, 40.0, 50.0])
    bad = _logits_for([1, 0, 1, 0], [0, 0, 1, 0], [0.0, 0.0, 0.0, 0.0])
    layer_logits = np.stack([bad, good], axis=1)  # (n, L=2, P)
    m = bei_metrics(good, labels, BEIS, layer_logits=layer_logits, datasets=["x", "x", "y", "y"])
    assert m["sex/layer_0/accuracy"] == 0.0 and m["sex/layer_1/accuracy"] == 1.0
    assert m["age/layer_1/mae"] == 0.0
    assert m["dataset/x/sex/accuracy"] == 1.0 and "dataset/y/dx/accuracy" in m
    assert best_layers({f"eval_{k}": v for k, v in m.items()}, BEIS) == {"sex": 1, "dx": 1}


def test_best_layers_prefers_the_shallowest_on_ties_and_skips_nan():
    metrics = {
        "eval_sex/layer_0/balanced_accuracy": 0.8,
        "eval_sex/layer_1/balanced_accuracy": 0.8,
        "eval_dx/layer_0/balanced_accuracy": float("nan"),
        "eval_dx/layer_1/balanced_accuracy": 0.4,
    }
    assert best_layers(metrics, BEIS) == {"sex": 0, "dx": 1}
    assert best_layers({}, BEIS) == {}


def test_bei_metrics_rejects_wrong_label_shape():
    with pytest.raises(ValueError, match="expected labels of shape"):
        bei_metrics(np.zeros((2, 6)), np.zeros((2, 2)), BEIS)
