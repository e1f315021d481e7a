"""The per-BEI metrics as a local `evaluate` module, loaded by path offline."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from lcm_hf.training.evaluate_metric import BEI_METRIC_PATH, compute_bei_metrics
from lcm_hf.training.metrics import bei_metrics

BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "site", "kind": "categorical", "classes": ["a", "b", "c"]},
    {"name": "age", "kind": "continuous"},
]


def example(n=48, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 6))
    labels = np.stack([rng.integers(0, 2, n), rng.integers(0, 3, n), rng.normal(40, 10, n)], axis=1).astype(float)
    labels[::7, 0] = np.nan
    labels[::5, 2] = np.nan
    return logits, labels, [f"s{i // 3}" for i in range(n)], rng.normal(size=(n, 2, 6))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def test_module_is_shipped_as_package_data():
    assert os.path.isfile(os.path.join(BEI_METRIC_PATH, "lcm_bei_metrics.py"))
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")) as handle:
        assert '"lcm_hf.training.evaluate_metric" = ["lcm_bei_metrics/*.py"]' in handle.read()


def test_compute_equals_bei_metrics():
    logits, labels, ids, layers = example()
    expected = bei_metrics(logits, labels, BEIS, layer_logits=layers, subject_ids=ids)
    assert same(compute_bei_metrics(logits, labels, BEIS, layer_logits=layers, subject_ids=ids), expected)
    assert "sex/subject/roc_auc" in expected and "site/layer_1/macro_f1" in expected


def test_evaluate_load_by_path_equals_bei_metrics():
    import evaluate

    logits, labels, ids, _ = example(seed=2)
    metric = evaluate.load(BEI_METRIC_PATH, keep_in_memory=True)
    computed = metric.compute(predictions=logits, references=labels, beis=BEIS, subject_ids=ids)
    assert same(computed, bei_metrics(logits, labels, BEIS, subject_ids=ids))


@pytest.mark.slow
def test_evaluate_load_by_path_works_offline(tmp_path):
    """A fresh process with HF_HUB_OFFLINE=1 (and an empty modules cache) loads the module by path."""
    logits, labels, ids, _ = example(seed=1)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    script = f"""
import json, numpy as np, evaluate
metric = evaluate.load({BEI_METRIC_PATH!r})
logits, labels = np.load({str(tmp_path / 'logits.npy')!r}), np.load({str(tmp_path / 'labels.npy')!r})
print(json.dumps(metric.compute(predictions=logits, references=labels, beis={BEIS!r}, subject_ids={ids!r})))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf_home"), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    loaded = json.loads(done.stdout.strip().splitlines()[-1], parse_constant=lambda c: float(c))
    assert same(loaded, bei_metrics(logits, labels, BEIS, subject_ids=ids))


def test_trainer_metrics_go_through_the_module(monkeypatch):
    import lcm_hf.training.evaluate_metric as module
    from lcm_hf.training import trainer

    calls = []
    monkeypatch.setattr(trainer, "compute_bei_metrics", lambda *a, **k: calls.append(k) or {"x": 1.0})
    assert module.compute_bei_metrics is not trainer.compute_bei_metrics
    fake = type("T", (), {"layer_metrics": False, "model": None, "_dataset_column": lambda self, n, k: None})()
    from transformers import EvalPrediction

    from lcm_hf import LcmConfig

    fake.model = type("M", (), {"config": LcmConfig(num_rois=8, hidden_size=16, num_attention_heads=2, beis=BEIS)})()
    logits, labels, _, _ = example()
    assert trainer.LcmTrainer._compute_lcm_metrics(fake, EvalPrediction(logits, labels)) == {"x": 1.0}
    assert len(calls) == 1
