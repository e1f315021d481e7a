"""What keeps `--cv_folds` fast on a small cohort (issue 18 item 6; timings: benchmarks/bench_cv_speed.py), guarded
by structure, not by time: a fold that keeps no best checkpoint writes none and never evaluates while training,
small training splits are batched from memory (the same batches), columns are read in one batch, and the garbage
collector is left as it was."""

import gc
import os

import numpy as np
from datasets import Dataset
from test_training_scripts import load_script

from lcm_hf.training.arguments import LcmTrainingArguments
from lcm_hf.training.checkpoints import needed_checkpoints
from lcm_hf.training.data import column_array, model_format, training_rows


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
    fold = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                load_best_model_at_end=False)
    fold.cv_fold = 0
    dropped = needed_checkpoints(fold)
    assert dropped is not fold and dropped.save_strategy == "no" and fold.save_strategy == "epoch"
    selecting = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    selecting.cv_fold = 0
    assert selecting.load_best_model_at_end and needed_checkpoints(selecting) is selecting  # the best is loaded
    single = LcmTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                  load_best_model_at_end=False)
    assert needed_checkpoints(single) is single and single.save_strategy == "epoch"  # resumable: kept


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
