"""LCM per-BEI metrics as a local `evaluate` module (loaded by path, works offline).

    >>> import evaluate
    >>> from lcm_hf.training.evaluate_metric import BEI_METRIC_PATH
    >>> metric = evaluate.load(BEI_METRIC_PATH)
    >>> metric.compute(predictions=logits, references=labels, beis=config.beis, subject_ids=ids)

One implementation: `_compute` is `lcm_hf.training.metrics.bei_metrics` (same keys, same values).
"""

import datasets as hf_datasets
import evaluate
import numpy as np

from lcm_hf.training.metrics import bei_metrics

_DESCRIPTION = (
    "Per-BEI (brain-environment interaction) metrics of the Large Connectome Model: accuracy, balanced "
    "accuracy, macro-F1 and ROC-AUC of categorical BEIs, MAE and Pearson r of continuous BEIs, at window "
    "and subject level (window probabilities averaged per subject), per layer and per dataset."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions: reduced logits, one row (P,) of BEI-token logits per window.
    references: labels, one row (K,) per window (class index or value per BEI), NaN where missing.
    beis: the model config's BEIs (`config.beis`), in token order.
    layer_logits: optional array (n, L, P) of per-layer logits, for `{bei}/layer_{l}/...` keys.
    subject_ids: optional sequence (n,), for subject-level `{bei}/subject/...` keys.
    datasets: optional sequence (n,) of dataset names, for `dataset/{name}/...` keys.
    Any other keyword of `bei_metrics` (e.g. scan_ids) is passed on.
Returns:
    A flat dict, see `lcm_hf.training.metrics`: `{bei}/{metric}`, `{bei}/subject/{metric}`,
    `mean/{metric}`, `mean/subject/{metric}`, ...
"""


def _stack(column) -> np.ndarray:
    array = np.asarray(column)
    if array.dtype == object:
        array = np.stack([np.asarray(row, dtype=np.float64) for row in column])
    return array.astype(np.float64)


class LcmBeiMetrics(evaluate.Metric):
    """`evaluate.Metric` wrapping `lcm_hf.training.metrics.bei_metrics`."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=hf_datasets.Features(
                {
                    "predictions": hf_datasets.Sequence(hf_datasets.Value("float64")),
                    "references": hf_datasets.Sequence(hf_datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions, references, beis=None, **options):
        """`bei_metrics(predictions, references, beis, **options)` (layer_logits, subject_ids, datasets, ...)."""
        if beis is None:
            raise ValueError("beis: expected the model config's BEIs (config.beis), got None")
        return bei_metrics(_stack(predictions), _stack(references), beis, **options)
