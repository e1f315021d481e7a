"""The baseline every LCM result is shown beside: a regularised linear model on the FC upper triangle.

Logistic regression (classes weighted to balance) for categorical BEIs, ridge regression for continuous ones,
both after standardising the features and fitted in the span of the training rows (the same model in at most
n_train dimensions); trained on the same training windows and scored on the same test windows and subjects as
the model. The regularisation strength is chosen by an inner *subject-grouped* cross-validation on the training
subjects (``GroupKFold`` over ``dataset::subject_id``; log-loss for logistic regression, MAE for ridge), never on
the validation or test windows; ties go to the stronger regularisation. The chosen model is then refitted on all
training windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .evaluate_metric import compute_bei_metrics

LOGISTIC_C = (0.001, 0.01, 0.1, 1.0)
"""Inverse regularisation strengths tried for logistic regression (strongest first)."""
RIDGE_ALPHA = (1e5, 1e4, 1e3, 1e2, 1e1, 1.0)
"""Ridge penalties tried (strongest first)."""


@dataclass
class BaselineFit:
    """What :func:`fit_baseline` returns.

    Attributes
    ----------
    logits : ndarray (n_test, P)
        Log-probabilities (categorical BEIs) / predicted values (continuous) in the model's logit layout.
    strengths : dict
        Per fitted BEI, the chosen ``C`` (logistic) or ``alpha`` (ridge).
    inner_scores : dict
        Per fitted BEI, ``{strength: mean inner-CV score}`` (higher is better: -log-loss, -MAE).
    fitted : list of str
        The BEIs fitted (a BEI with fewer than 4 labelled training windows or one class is not).
    """

    logits: np.ndarray
    strengths: dict = field(default_factory=dict)
    inner_scores: dict = field(default_factory=dict)
    fitted: list = field(default_factory=list)


def fc_features(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(upper-triangle FC features (n, N(N-1)/2), labels (n, K)) of a labelled window dataset."""
    from ..data.columns import column_array

    fc = column_array(dataset, "connectivity")
    rows, cols = np.triu_indices(fc.shape[-1], 1)
    return fc[:, rows, cols].astype(np.float64), column_array(dataset, "labels", np.float64)


def subject_keys(dataset) -> np.ndarray:
    """``dataset::subject_id`` per row (subjects of two datasets never merge)."""
    subjects = [str(s) for s in dataset["subject_id"]]
    if "dataset" not in dataset.column_names:
        return np.asarray(subjects)
    return np.asarray([f"{d}::{s}" for d, s in zip(dataset["dataset"], subjects)])


class RowSpace:
    """Project standardised (centred) features onto the span of the training rows (at most n_train dims).

    For an L2-penalised linear model with an unpenalised intercept the optimal weights lie in that span, so
    logistic / ridge regression on the projection is the same model as on the full FC upper triangle
    (same predictions, up to the solver's tolerance), fitted in ``min(n, F)`` instead of ``F`` dimensions.
    """

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        eigenvalues, u = np.linalg.eigh(x @ x.T)  # (n, n) Gram: cheap for n << F
        keep = eigenvalues > max(eigenvalues.max(initial=0.0), 0.0) * 1e-12
        self.components_ = (u[:, keep] / np.sqrt(eigenvalues[keep])).T @ x  # orthonormal rows spanning x's rows
        return self

    def transform(self, x):
        return np.asarray(x, dtype=np.float64) @ self.components_.T

    def fit_transform(self, x, y=None):
        return self.fit(x).transform(x)

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def make_model(kind: str, strength: float, seed: int = 0):
    """Standardise -> :class:`RowSpace` -> logistic regression (``C=strength``, ``class_weight="balanced"``: a
    strongly regularised model does not fall back to always predicting the majority class) or ridge
    (``alpha=strength``)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "categorical":
        head = LogisticRegression(C=strength, class_weight="balanced", max_iter=5000, tol=1e-6, random_state=seed)
    else:
        head = Ridge(alpha=strength)
    return make_pipeline(StandardScaler(), RowSpace(), head)


def _log_loss(model, x: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    probabilities = np.full((len(x), num_classes), 1e-9)
    probabilities[:, model.classes_.astype(int)] = model.predict_proba(x)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y)), y.astype(int)], 1e-9, None))))


def choose_strength(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, num_classes: int = 2,
                    inner_folds: int = 5, seed: int = 0) -> tuple[float, dict]:
    """The regularisation strength with the best mean score over ``GroupKFold(inner_folds)`` of the groups.

    Parameters
    ----------
    kind : {"categorical", "continuous"}
    x : ndarray (n, F); y : ndarray (n,); groups : ndarray (n,) subject of every window.
    num_classes : int
        Classes of a categorical BEI (log-loss over all of them).
    inner_folds : int
        At most this many folds (fewer when there are fewer subjects; at least 2 subjects are needed).

    Returns
    -------
    (strength, {strength: mean score}) ; higher scores are better (-log-loss, -MAE).
    """
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    grid = LOGISTIC_C if kind == "categorical" else RIDGE_ALPHA
    n_groups = np.unique(groups).size
    if n_groups < 2:
        return grid[len(grid) // 2], {}
    splitter = GroupKFold(n_splits=min(inner_folds, n_groups))
    folds = [
        (train, test) for train, test in splitter.split(x, y, groups)
        if kind != "categorical" or np.unique(y[train]).size >= 2
    ]
    values = {strength: [] for strength in grid}
    for train, test in folds:
        scaler = StandardScaler().fit(x[train])  # standardise + row space once a fold, as make_model does
        rows = RowSpace().fit(scaler.transform(x[train]))
        x_train, x_test = rows.transform(scaler.transform(x[train])), rows.transform(scaler.transform(x[test]))
        for strength in grid:
            head = make_model(kind, strength, seed)[-1].fit(x_train, y[train])
            if kind == "categorical":
                values[strength].append(-_log_loss(head, x_test, y[test], num_classes))
            else:
                values[strength].append(-float(np.abs(head.predict(x_test) - y[test]).mean()))
    scores = {s: float(np.mean(v)) if v else -math.inf for s, v in values.items()}
    best = max(scores.values())
    if not math.isfinite(best):
        return grid[len(grid) // 2], scores
    return next(s for s in grid if scores[s] == best), scores  # strongest regularisation on ties


def fit_baseline(splits: dict, beis: list[dict], seed: int = 0, inner_folds: int = 5) -> BaselineFit:
    """Fit the baseline per BEI on ``splits["train"]`` (strength by inner grouped CV) and predict
    ``splits["test"]``.

    Parameters
    ----------
    splits : dict
        ``{"train", "test", ...}`` labelled window datasets (``connectivity``, ``labels``, ``subject_id``).
    beis : list of dict
        ``config.beis`` (label columns and logit layout).
    seed : int
    inner_folds : int
        Folds of the inner subject-grouped CV.

    Returns
    -------
    BaselineFit
    """
    from ..configuration_lcm import bei_token_slices

    x_train, y_train = fc_features(splits["train"])
    groups = subject_keys(splits["train"])
    x_test, _ = fc_features(splits["test"])
    slices = bei_token_slices(beis)
    fit = BaselineFit(logits=np.zeros((len(x_test), slices[-1].stop)))
    for index, (bei, token_slice) in enumerate(zip(beis, slices)):
        known = ~np.isnan(y_train[:, index])
        y = y_train[known, index]
        if known.sum() < 4 or np.unique(y).size < (2 if bei["kind"] == "categorical" else 1):
            continue
        num_classes = len(bei.get("classes") or [])
        strength, scores = choose_strength(
            bei["kind"], x_train[known], y, groups[known], num_classes, inner_folds, seed
        )
        model = make_model(bei["kind"], strength, seed).fit(x_train[known], y)
        fit.strengths[bei["name"]], fit.inner_scores[bei["name"]] = strength, scores
        fit.fitted.append(bei["name"])
        if bei["kind"] == "categorical":
            probabilities = np.full((len(x_test), num_classes), 1e-9)
            probabilities[:, model.classes_.astype(int)] = model.predict_proba(x_test)
            fit.logits[:, token_slice] = np.log(np.clip(probabilities, 1e-9, None))
        else:
            fit.logits[:, token_slice.start] = model.predict(x_test)
    return fit


def logistic_regression_baseline(splits: dict, beis: list[dict], seed: int = 0,
                                 inner_folds: int = 5) -> tuple[dict, np.ndarray]:
    """:func:`fit_baseline` scored with `bei_metrics` on the test windows, scans and subjects.

    Returns
    -------
    (metrics, logits (n_test, P)) ; BEIs the baseline could not fit are not scored.
    """
    fit = fit_baseline(splits, beis, seed, inner_folds)
    test = splits["test"]
    _, y_test = fc_features(test)
    fitted = np.asarray([bei["name"] in fit.fitted for bei in beis])
    y_test = np.where(fitted[None, :], y_test, np.nan)
    columns = test.column_names
    metrics = compute_bei_metrics(  # the `evaluate` module (evaluate_metric/), i.e. metrics.bei_metrics
        fit.logits,
        y_test,
        beis,
        subject_ids=list(test["subject_id"]),
        datasets=list(test["dataset"]) if "dataset" in columns else None,
        **({"scan_ids": list(test["scan_id"])} if "scan_id" in columns else {}),
    )
    return metrics, fit.logits


__all__ = [
    "BaselineFit",
    "RowSpace",
    "LOGISTIC_C",
    "RIDGE_ALPHA",
    "choose_strength",
    "fc_features",
    "fit_baseline",
    "logistic_regression_baseline",
    "make_model",
    "subject_keys",
]
