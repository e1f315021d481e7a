"""What keeps `--cv_folds` fast on a small cohort (issue 18 item 6; timings: benchmarks/bench_cv_speed.py), guarded
by structure, not by time: a fold that keeps no best checkpoint writes none and never evaluates while training,
small training splits are batched from memory (the same batches), columns are read in one batch, and the garbage
collector is left as it was."""

import gc
import os

import numpy as np
import pytest
from datasets import Dataset
from test_training_scripts import load_script

from lcm_hf.data.columns import column_array
from lcm_hf.training.arguments import LcmTrainingArguments
from lcm_hf.training.checkpoints import needed_checkpoints
from lcm_hf.training.data import model_format, training_rows


def _windows(n=6, rois=5):
    rng = np.random.default_rng(0)
    return model_format(Dataset.from_dict({
        "connectivity": [np.tanh(rng.normal(size=(rois, rois))).astype(np.float32) for _ in range(n)],
        "labels": [[float(i % 2), np.nan if i % 3 else 1.0] for i in range(n)],
        "subject_id": [f"s{i}" for i in range(n)],
        "dataset": ["d"] * n,
    }))


def _fc_folder(tmp_path, subjects=16, rois=6):
    """A published FC dataset (an edge table through the library's importer): `subjects` subjects, two classes."""
    from lcm_hf.data.edge_table import import_edge_table
    from lcm_hf.data.publishing import publish_dataset

    rng = np.random.default_rng(0)
    edges = rois * (rois - 1) // 2
    table = tmp_path / "fc_edges.csv"
    lines = ["participant_id,diagnosis," + ",".join(f"e{i}" for i in range(edges))]
    lines += [f"sub-{s:02d},{('control', 'patient')[s % 2]}," + ",".join(f"{v:.4f}" for v in
              np.tanh(rng.normal(0, 0.3, edges))) for s in range(subjects)]
    table.write_text("\n".join(lines) + "\n")
    return str(publish_dataset(import_edge_table(table), tmp_path / "fc"))


def test_a_small_cohort_cv_fold_writes_no_checkpoint_and_evaluates_only_its_test_split(tmp_path, monkeypatch):
    """The scripts' defaults (a checkpoint and an evaluation every epoch, best epoch kept) on 16 subjects: the
    small-cohort policy keeps the last step and folds are never resumed, so nothing reads a checkpoint."""
    from lcm_hf.training.trainer import LcmTrainer

    calls = {"evaluate": 0, "predict": 0, "checkpoint": 0}
    for name, key in (("evaluate", "evaluate"), ("predict", "predict"), ("_save_checkpoint", "checkpoint")):
        original = getattr(LcmTrainer, name)

        def counted(self, *args, __original=original, __key=key, **kwargs):
            calls[__key] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(LcmTrainer, name, counted)
    out = tmp_path / "cv"
    load_script("pretrain").main([
        "--dataset_dirs", _fc_folder(tmp_path), "--categorical_columns", "diagnosis", "--num_train_epochs", "2",
        "--momentum_epochs", "1", "--hidden_size", "16", "--num_hidden_layers", "1", "--num_attention_heads", "2",
        "--intermediate_size", "32", "--per_device_train_batch_size", "4", "--use_cpu", "--report_to", "none",
        "--disable_tqdm", "true", "--bootstrap_resamples", "50", "--cv_folds", "2", "--output_dir", str(out)])
    assert calls == {"evaluate": 0, "predict": 2, "checkpoint": 0}  # one test prediction per fold, nothing else
    for fold in ("fold-0", "fold-1"):
        names = os.listdir(out / fold)
        assert not [n for n in names if "checkpoint" in n], names
        assert "model.safetensors" in names and "results.json" in names  # the fold's model is still saved
    assert gc.get_freeze_count() == 0  # the folds' freeze is undone


def test_checkpoints_are_dropped_only_where_nothing_reads_them(tmp_path):
    def arguments(cv_fold=None, **kw):
        args = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **kw)
        if cv_fold is not None:
            args.cv_fold = cv_fold
        return args

    fold = arguments(0, load_best_model_at_end=False)
    dropped = needed_checkpoints(fold)
    assert dropped is not fold and dropped.save_strategy == "no" and fold.save_strategy == "epoch"
    selecting = arguments(0)  # keeps the best epoch: only the epochs that improve on the best are saved
    assert selecting.load_best_model_at_end
    assert needed_checkpoints(selecting).save_strategy == "best" and selecting.save_strategy == "epoch"
    single = arguments(load_best_model_at_end=False)
    assert needed_checkpoints(single) is single and single.save_strategy == "epoch"  # resumable: kept
    assert needed_checkpoints(arguments()).save_strategy == "epoch"


@pytest.mark.slow  # ~10 s on a quiet machine
def test_a_selecting_cv_fold_saves_only_improving_epochs_and_keeps_the_best(tmp_path, monkeypatch):
    import json

    from lcm_hf.training.trainer import LcmTrainer

    saved = []
    original = LcmTrainer._save_checkpoint

    def counted(self, *args, **kwargs):
        saved.append(self.state.global_step)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LcmTrainer, "_save_checkpoint", counted)
    out = tmp_path / "cv"
    load_script("pretrain").main([
        "--dataset_dirs", _fc_folder(tmp_path, subjects=24), "--categorical_columns", "diagnosis",
        "--small_cohort_policy", "off", "--num_train_epochs", "4", "--momentum_epochs", "1", "--hidden_size", "16",
        "--num_hidden_layers", "1", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--per_device_train_batch_size", "4", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
        "--bootstrap_resamples", "50", "--cv_folds", "2", "--metric_for_best_model", "loss",
        "--output_dir", str(out)])
    for fold in ("fold-0", "fold-1"):
        results = json.loads((out / fold / "results.json").read_text())
        evaluations = [e for e in results["log_history"] if "eval_loss" in e]
        candidates = [e for e in evaluations if e["epoch"] > 1 + 1e-6]  # stage 2 (momentum_epochs 1)
        best = min(candidates, key=lambda e: e["eval_loss"])
        assert results["kept_best"] and results["best_model_checkpoint"].endswith(f"checkpoint-{best['step']}")
        improving = [e["step"] for i, e in enumerate(candidates)
                     if e["eval_loss"] < min([c["eval_loss"] for c in candidates[:i]], default=np.inf)]
        steps = [int(n.split("-")[1]) for n in os.listdir(out / fold) if n.startswith("checkpoint-")]
        assert best["step"] in steps and set(steps) <= set(improving)
    assert len(saved) < 2 * 4  # fewer than a checkpoint every epoch


def test_small_training_splits_are_batched_from_memory_with_the_same_rows():
    from lcm_hf.data import LcmDataCollator

    dataset = _windows()
    rows = training_rows(dataset)
    assert isinstance(rows, list) and len(rows) == len(dataset)
    assert all(sorted(row) == ["connectivity", "labels"] for row in rows)
    collate = LcmDataCollator()
    order = [4, 0, 5, 2]
    from_memory = collate([rows[i] for i in order])
    from_dataset = collate([dataset[i] for i in order])
    for key in ("connectivity", "labels"):
        np.testing.assert_array_equal(from_memory[key].numpy(), from_dataset[key].numpy())
    assert training_rows(dataset, max_bytes=10) is dataset  # too large: read per batch as before
    unlabelled = dataset.remove_columns("labels")
    assert training_rows(unlabelled) is unlabelled


def test_a_column_is_read_as_one_array_equal_to_its_rows():
    dataset = _windows()
    expected = np.stack([np.asarray(row["connectivity"]) for row in dataset])
    np.testing.assert_array_equal(column_array(dataset, "connectivity"), expected)
    labels = column_array(dataset, "labels", np.float64)
    assert labels.dtype == np.float64 and labels.shape == (6, 2) and np.isnan(labels[1, 1]) and labels[0, 1] == 1.0
