"""Streaming pretraining (lcm_hf.training.streaming): windows, held-out subjects, and resuming mid-stream equals
not stopping."""

import json

import numpy as np
import pytest
import torch

from lcm_hf.training.streaming import WindowStream, holdout_split
from lcm_hf.windows_lcm import window_spans


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Two published demo datasets of 12 subjects x 40 TRs, 4 shards each (3 rows per shard)."""
    from lcm_hf.data import publish_dataset
    from lcm_hf.demo import make_demo_cohort

    root = tmp_path_factory.mktemp("published")
    cohort = make_demo_cohort(n_subjects=12, n_timepoints=40, datasets=("hcp_like", "abide_like"))
    return [str(publish_dataset(ds, root / name, max_rows_per_shard=3)) for name, ds in cohort.items()]


def arguments(output_dir, **training):
    from lcm_hf.training.arguments import LcmDataArguments, LcmModelArguments, LcmTrainingArguments

    data = LcmDataArguments(
        categorical_columns=["sex", "task", "autism"], continuous_columns=["age"], streaming=True,
        window_size=16, validation_fraction=0.2, test_fraction=0.2,
        pseudo_labels=json.dumps({"abide_like": {"task": "rest"}}),
    )
    model = LcmModelArguments(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                              fc_norm="layernorm", dropout=0.0, attention_dropout=0.0)
    settings = dict(output_dir=str(output_dir), max_steps=8, momentum_steps=4, per_device_train_batch_size=5,
                    save_strategy="steps", save_steps=5, eval_strategy="steps", eval_steps=8, logging_steps=1,
                    report_to="none", disable_tqdm=True, use_cpu=True, seed=0, calibrate=False,
                    load_best_model_at_end=False, save_total_limit=None)
    settings.update(training)
    return data, model, LcmTrainingArguments(**settings)


def crop_starts(length, window_size, stride, rng):
    """Start TRs of a scan's streamed windows: the one window rule with random-offset crops."""
    return [start for start, _ in window_spans(length, window_size, stride, short_series="drop", rng=rng)]


def test_crop_starts_and_holdout_are_deterministic():
    assert crop_starts(10, 4, 4, None) == [0, 4]
    assert crop_starts(3, 4, 4, None) == []
    starts = crop_starts(45, 10, 10, np.random.default_rng(0))
    assert len(starts) == 4 and 0 <= starts[0] <= 5 and np.diff(starts).tolist() == [10, 10, 10]
    splits = [holdout_split("a", f"sub-{i}", 0.2, 0.2) for i in range(2000)]
    assert splits == [holdout_split("a", f"sub-{i}", 0.2, 0.2) for i in range(2000)]
    assert abs(splits.count("test") / 2000 - 0.2) < 0.03 and abs(splits.count("validation") / 2000 - 0.2) < 0.03


@pytest.mark.parametrize("state_every", [1, 5, 1000])
def test_window_stream_resumes_after_any_window(published, state_every):
    import datasets

    from lcm_hf.training.streaming import StreamSources

    data, _, _ = arguments("unused")
    sources = StreamSources(published, data)
    assert datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN == 0  # no 5 s pause at each pass end (pyarrow > 24)

    def stream():
        return WindowStream(sources.train_scans(), 16, seed=3, keep=sources.is_training, state_every=state_every)

    iterator = iter(stream())
    windows = [next(iterator) for _ in range(60)]  # more than one pass
    assert {w["_stream_state"]["pass"] for w in windows} == {0, 1}
    assert len({json.dumps(w["_stream_state"]["scans"]) for w in windows[:25]}) > (1 if state_every < 24 else 0)
    for cut in (0, 7, 33):
        resumed = stream()
        resumed.load_state_dict(windows[cut]["_stream_state"])
        again = iter(resumed)
        for expected in windows[cut + 1 : cut + 6]:
            got = next(again)
            assert (got["subject_id"], got["dataset"]) == (expected["subject_id"], expected["dataset"])
            np.testing.assert_array_equal(got["timeseries"], expected["timeseries"])
    held_out = {(w["dataset"], w["subject_id"]) for w in windows}
    assert all(sources.split_of(d, s) == "train" for d, s in held_out)


def test_streaming_resume_equals_uninterrupted(tmp_path, published):
    from safetensors.torch import load_file

    from lcm_hf.training.streaming_recipe import pretrain_streaming

    full = pretrain_streaming(published, *arguments(tmp_path / "full"))  # decoded in a worker (--stream_workers 1)
    # A fresh run from the uninterrupted run's step-5 checkpoint (25 windows in: mid-scan; the stream's second
    # pass starts within the resumed steps), decoded in the training process this time.
    with open(tmp_path / "full" / "checkpoint-5" / "stream_state-0.json") as handle:
        saved = json.load(handle)
    assert saved["world_size"] == 1 and saved["state"]["pass"] == 0
    data, model, training = arguments(tmp_path / "resumed")
    data.stream_workers = 0
    resumed = pretrain_streaming(published, data, model, training,
                                 resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-5"))
    passes = [h for h in full["log_history"] if "loss" in h]
    losses = [{h["step"]: h["loss"] for h in run["log_history"] if "loss" in h} for run in (full, resumed)]
    assert len(passes) == 8 and set(range(6, 9)) <= set(losses[1])
    assert [losses[1][s] for s in range(6, 9)] == pytest.approx([losses[0][s] for s in range(6, 9)], rel=1e-5)
    assert resumed["stage_history"] == full["stage_history"] == [[0, "momentum"], [4, "adaptive"]]
    weights = [load_file(str(tmp_path / name / "model.safetensors")) for name in ("full", "resumed")]
    for name, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][name], tensor, rtol=1e-4, atol=1e-5, msg=name)

    # The streamed training subjects are recorded with the model (hashed), held-out ones are not (issue 18).
    import os

    from lcm_hf.data import load_published
    from lcm_hf.training.subjects import subject_hash

    record = json.loads((tmp_path / "full" / "config.json").read_text())["training_subjects"]["datasets"]
    for path in published:
        name = os.path.basename(path)
        subjects = set(load_published(path)["train"]["subject_id"])
        trained = {s for s in subjects if holdout_split(name, s, 0.2, 0.2, 0) == "train"}
        assert 0 < len(trained) < len(subjects)
        assert record[name]["train"] == sorted(subject_hash(name, s) for s in trained)


def test_shard_split_warns_when_the_world_size_does_not_divide_the_shards(published):
    from lcm_hf.training.streaming import StreamSources

    sources = StreamSources(published, arguments("unused")[0])
    with pytest.warns(RuntimeWarning, match="has 4 shards, not a multiple of the 3 processes"):
        sources.train_scans(rank=0, world_size=3)
    with pytest.raises(ValueError, match=r"--dataset_weights: expected 2 positive weights .* got \[1.0\]"):
        sources.train_scans(weights=[1.0])


def test_streaming_needs_max_steps_and_defaults_the_stage_one_steps(tmp_path):
    from lcm_hf.training.streaming_recipe import streaming_schedule

    _, _, args = arguments(tmp_path, max_steps=-1)
    with pytest.raises(ValueError, match="--max_steps: expected a positive number of steps with --streaming true"):
        streaming_schedule(args)
    _, _, args = arguments(tmp_path, max_steps=50, momentum_steps=None, eval_strategy="epoch", save_strategy="epoch")
    streaming_schedule(args)
    assert args.momentum_steps == 5 and args.eval_steps == args.save_steps == 5
    assert args.eval_strategy == args.save_strategy == "steps"


def test_more_than_one_stream_worker_is_refused_before_any_data_is_read(tmp_path):
    from lcm_hf.training.streaming_recipe import pretrain_streaming

    data, model, training = arguments(tmp_path / "run")
    data.stream_workers = 2
    with pytest.raises(ValueError, match=r"--stream_workers: expected 0 or 1 .*, got 2"):
        pretrain_streaming([str(tmp_path / "no such folder")], data, model, training)


def test_time_series_not_stored_as_array2d_are_refused_by_name(tmp_path):
    from datasets import Dataset, Features, List, Value

    from lcm_hf.data import publish_dataset
    from lcm_hf.training.streaming import StreamSources

    features = Features({"subject_id": Value("string"), "timeseries": List(List(Value("float32")))})
    rows = {"subject_id": ["s0", "s1"], "timeseries": np.zeros((2, 8, 3), dtype=np.float32).tolist()}
    folder = publish_dataset(Dataset.from_dict(rows, features=features), tmp_path / "lists")
    data, _, _ = arguments(tmp_path / "run")
    with pytest.raises(ValueError, match=r"expected the 'timeseries' column of .*lists' stored as an Array2D \(T, N\)"):
        StreamSources([str(folder)], data)
