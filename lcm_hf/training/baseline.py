"""The baseline every LCM result is shown beside: a regularised linear model on the FC upper triangle.

Logistic regression for categorical BEIs, ridge regression for continuous ones, trained on the same training
windows and scored on the same test windows and subjects as the model.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import bei_metrics


def logistic_regression_baseline(splits: dict, beis: list[dict], seed: int = 0) -> tuple[dict, np.ndarray]:
    """Logistic regression (categorical BEIs) / ridge regression (continuous) on the FC upper triangle.

    Trained on the training windows, its regularisation picked on the validation windows, scored on the test
    windows and subjects with `bei_metrics`. Returns (metrics, reduced "logits" (n_test, P))."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import balanced_accuracy_score, mean_absolute_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..configuration_lcm import bei_token_slices

    def features(dataset):
        dataset = dataset.with_format("numpy")
        fc = np.stack(dataset["connectivity"])
        rows, cols = np.triu_indices(fc.shape[-1], 1)
        return fc[:, rows, cols], np.stack(dataset["labels"]).astype(np.float64)

    x_train, y_train = features(splits["train"])
    x_val, y_val = features(splits["validation"])
    x_test, y_test = features(splits["test"])
    logits = np.zeros((len(x_test), bei_token_slices(beis)[-1].stop))
    fitted = np.zeros(len(beis), dtype=bool)
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        train, val = ~np.isnan(y_train[:, index]), ~np.isnan(y_val[:, index])
        if train.sum() < 4 or len(np.unique(y_train[train, index])) < (
            2 if bei["kind"] == "categorical" else 1
        ):
            continue
        best, best_score = None, -math.inf
        for strength in (0.003, 0.01, 0.03, 0.1):
            if bei["kind"] == "categorical":
                model = make_pipeline(
                    StandardScaler(), LogisticRegression(C=strength, max_iter=2000, random_state=seed)
                )
            else:
                model = make_pipeline(StandardScaler(), Ridge(alpha=1.0 / strength))
            model.fit(x_train[train], y_train[train, index])
            if val.sum() == 0:
                best = model
                break
            if bei["kind"] == "categorical":
                score = balanced_accuracy_score(y_val[val, index], model.predict(x_val[val]))
            else:
                score = -mean_absolute_error(y_val[val, index], model.predict(x_val[val]))
            if score > best_score:
                best, best_score = model, score
        fitted[index] = True
        if bei["kind"] == "categorical":
            probabilities = np.full((len(x_test), len(bei["classes"])), 1e-9)
            probabilities[:, best.classes_.astype(int)] = best.predict_proba(x_test)
            logits[:, token_slice] = np.log(np.clip(probabilities, 1e-9, None))
        else:
            logits[:, token_slice.start] = best.predict(x_test)
    test = splits["test"]
    y_test = np.where(fitted[None, :], y_test, np.nan)  # BEIs with one training class are not scored
    metrics = bei_metrics(
        logits, y_test, beis, subject_ids=list(test["subject_id"]), datasets=list(test["dataset"])
    )
    return metrics, logits


__all__ = ["logistic_regression_baseline"]
