"""Streaming with 2 CPU processes (`accelerate launch --multi_gpu --num_processes 2`, gloo) gives the same losses
as 1 process at the same global batch (slow: runs the pretraining script twice)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def publish(folder):
    """24 subjects x 36 TRs with published splits; train = 4 shards of 4 scans (2 windows of 16 TRs each, random
    crop offsets in [0, 4]): every process reads whole shards and a global batch of 8 windows is one round of
    the 4 shards, whichever process reads them."""
    from datasets import DatasetDict

    from lcm_hf.data import publish_dataset
    from lcm_hf.demo import make_demo_cohort

    cohort = make_demo_cohort(n_subjects=24, n_timepoints=36, datasets=("hcp_like",))["hcp_like"]
    splits = DatasetDict({"train": cohort.select(range(16)), "validation": cohort.select(range(16, 20)),
                          "test": cohort.select(range(20, 24))})
    return publish_dataset(splits, folder, max_rows_per_shard=4)


def run(command, data, output_dir, batch):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    argv = command + [
        os.path.join(ROOT, "training", "pretrain.py"), "--streaming", "true", "--dataset_dirs", str(data),
        "--categorical_columns", "sex", "task", "--continuous_columns", "age", "--window_size", "16",
        "--max_steps", "6", "--momentum_steps", "2", "--eval_strategy", "steps", "--eval_steps", "3",
        "--save_strategy", "no", "--logging_steps", "1", "--load_best_model_at_end", "false", "--calibrate", "false",
        "--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--fc_norm", "layernorm", "--dropout", "0", "--attention_dropout", "0", "--use_cpu", "--report_to", "none",
        "--disable_tqdm", "true", "--seed", "0", "--per_device_train_batch_size", str(batch),
        "--output_dir", str(output_dir),
    ]
    completed = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((output_dir / "results.json").read_text())


@pytest.mark.slow
def test_streaming_two_processes_match_one_at_equal_global_batch(tmp_path):
    data = publish(tmp_path / "data")
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    single = run(accelerate + ["--num_processes", "1"], data, tmp_path / "one", batch=8)
    double = run(accelerate + ["--multi_gpu", "--num_processes", "2"], data, tmp_path / "two", batch=4)
    assert single["stage_history"] == double["stage_history"] == [[0, "momentum"], [2, "adaptive"]]
    losses = [[h["loss"] for h in result["log_history"] if "loss" in h] for result in (single, double)]
    assert len(losses[0]) == 6  # 6 steps: the stream's second pass starts at step 5
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert single["readout_layers"] == double["readout_layers"]
