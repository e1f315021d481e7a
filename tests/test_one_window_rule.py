"""One window rule, one FC rule (issue 17, items 1 and 2): one 191-TR scan, windows of 90 TRs, through every path
(training data as the scripts build it, streaming, the collator, the processor, the pipeline, `lcm-hf predict
--windows`, embeddings) gives the same two windows (TRs 0-90 and 90-180; the 11-TR tail is no window) and the
same FC: Pearson against numpy float64, and a `tangent` processor fitted once on the training windows against
nilearn fitted on the same windows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from lcm_hf import LcmForBeiPrediction, LcmProcessor
from lcm_hf.data import (
    LcmDataCollator,
    add_connectivity,
    connectome_features,
    expand_windows,
    union_vocabulary,
)
from lcm_hf.embeddings import embed_files, read_embeddings, readout_states
from lcm_hf.pipeline_lcm import load_phenotype_pipeline
from lcm_hf.training.arguments import LcmDataArguments
from lcm_hf.training.data import build_splits, training_processor
from lcm_hf.training.streaming import StreamCollator, WindowStream
from lcm_testing import make_tiny_config

N, T, WINDOW = 12, 191, 90
STARTS = (0, 90)  # 191 TRs: two full windows; TRs 180-190 are no window
ROOT = Path(__file__).resolve().parents[1]


def scan(seed):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((N, N)) * 0.4 + np.eye(N)
    return (50.0 + rng.standard_normal((T, N)) @ mixing).astype(np.float32)  # raw, correlated, not demeaned


def cohort(subjects):
    return Dataset.from_dict(
        {"subject_id": subjects, "dataset": ["d"] * len(subjects), "site": ["x"] * len(subjects),
         "scan_id": ["task-rest"] * len(subjects), "sex": ["F", "M"] * (len(subjects) // 2),
         "timeseries": [scan(int(s[1:])) for s in subjects]},
        features=connectome_features(N, {"sex": "string"}, scan_id=True))


@pytest.fixture(scope="module")
def parts():
    """The scripts' `split_parts` layout; s0 (the 191-TR scan followed through every path) is a test subject."""
    return {"train": {"d": cohort([f"s{i}" for i in range(1, 7)])}, "validation": {"d": cohort(["s7", "s8"])},
            "test": {"d": cohort(["s0", "s9"])}}


@pytest.fixture(scope="module")
def data_args():
    return LcmDataArguments(categorical_columns=["sex"], window_size=WINDOW)


@pytest.fixture(scope="module")
def vocabulary(parts):
    return union_vocabulary(parts["train"], ["sex"])


def windows_of(series):
    return [series[s : s + WINDOW] for s in STARTS]


def pearson(series):
    return np.stack([np.corrcoef(w.astype(np.float64).T) for w in windows_of(series)])


def tangent(parts):
    """nilearn's tangent FC of s0's windows, the reference fitted on every training window (float64)."""
    from nilearn.connectome import ConnectivityMeasure

    training = [w.astype(np.float64) for ts in parts["train"]["d"]["timeseries"]
                for w in windows_of(np.asarray(ts, dtype=np.float32))]
    measure = ConnectivityMeasure(kind="tangent", standardize=False).fit(training)
    return measure.transform([w.astype(np.float64) for w in windows_of(scan(0))])


@pytest.fixture(scope="module", params=["correlation", "tangent"])
def run(request, parts, data_args, vocabulary):
    """The processor the training recipe builds (a group kind fitted once, on the training split), the splits it
    builds with it, and the expected FC of s0's two windows."""
    processor = training_processor(parts, vocabulary, data_args, kind=request.param)
    splits = build_splits(parts, vocabulary, data_args, {}, processor)
    expected = pearson(scan(0)) if request.param == "correlation" else tangent(parts)
    return processor, splits, expected


@pytest.fixture(scope="module")
def model(vocabulary):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(num_rois=N, beis=vocabulary.to_config()))
    model.train()
    with torch.no_grad():  # BatchNorm running statistics off their initial values
        model(torch.rand(8, N, N))
    return model.eval()


@pytest.fixture(scope="module")
def folder(run, model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    run[0].save_pretrained(folder)
    return folder


def assert_fc(actual, expected):
    actual = np.asarray(actual)
    assert actual.shape == (len(STARTS), N, N)
    np.testing.assert_allclose(actual, expected, atol=2e-5)


def test_the_contract_holds_the_window_rule(run, folder):
    processor = run[0]
    assert (processor.window_size, processor.window_stride, processor.short_series) == (WINDOW, None, "drop")
    assert processor.window_spans(T) == [(s, WINDOW) for s in STARTS]
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    assert (saved["window_size"], saved["window_stride"], saved["short_series"]) == (WINDOW, None, "drop")
    assert LcmProcessor.from_pretrained(folder).window_spans(T) == processor.window_spans(T)


def test_training_data_as_the_scripts_build_it(run, parts, data_args, vocabulary):
    processor, splits, expected = run
    rows = [i for i, s in enumerate(splits["test"]["subject_id"]) if s == "s0"]
    test = splits["test"].select(rows)
    assert test["window_index"] == [0, 1] and test["window_length"] == [WINDOW, WINDOW]
    assert_fc(test["connectivity"], expected)
    windows = expand_windows(parts["test"]["d"].select([0]), processor).with_format("numpy")
    for stored, start in zip(windows["timeseries"], STARTS):
        np.testing.assert_array_equal(stored, scan(0)[start : start + WINDOW])
    if processor.kind == "correlation":  # build_splits' own processor (the recipe's default) is the same
        default = build_splits(parts, vocabulary, data_args, {})["test"]
        np.testing.assert_array_equal(default["connectivity"][: len(rows)], test["connectivity"])


def test_build_dataset_windows(tmp_path):
    from datasets import load_dataset
    from own_data import load_script

    folder = tmp_path / "raw"
    folder.mkdir()
    for subject in ("s0", "s9"):
        np.save(folder / f"sub-{subject}_task-rest_bold.npy", scan(int(subject[1:])))
    (folder / "participants.tsv").write_text("participant_id\tsex\nsub-s0\tF\nsub-s9\tM\n")
    build = load_script("processing/build_dataset.py")
    for flags, column in (([], "timeseries"), (["--connectivity"], "connectivity")):
        out = tmp_path / f"built_{column}"
        assert build.main([str(folder), "--phenotypes", str(folder / "participants.tsv"), "--window-size",
                           str(WINDOW), *flags, "--output", str(out)]) == 0
        built = load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache")).with_format("numpy")
        rows = [i for i, s in enumerate(built["subject_id"]) if s.endswith("s0")]
        assert [built["window_length"][i] for i in rows] == [WINDOW, WINDOW]
        if column == "timeseries":
            for i, start in zip(rows, STARTS):
                np.testing.assert_array_equal(built[i]["timeseries"], scan(0)[start : start + WINDOW])
        else:
            assert_fc(np.stack([built[i]["connectivity"] for i in rows]), pearson(scan(0)))


def test_collator_and_add_connectivity_call_the_processor(run, parts):
    processor, _, expected = run
    windows = expand_windows(parts["test"]["d"].select([0]), processor)
    batch = LcmDataCollator(processor)([windows[i] for i in range(len(windows))])
    assert_fc(batch["connectivity"], expected)
    assert batch["labels"].tolist() == [[0.0], [0.0]]  # s0 is F
    assert_fc(add_connectivity(windows, processor).with_format("numpy")["connectivity"], expected)
    with pytest.raises(ValueError, match=r"row of subject 's0': expected a window of at most 90 TRs .*got 191 TRs"):
        LcmDataCollator(processor)([parts["test"]["d"][0]])


@pytest.mark.parametrize("random_crops", [False, True])
def test_streaming_windows_and_collator(run, parts, random_crops):
    processor, _, expected = run
    scans = parts["test"]["d"].select([0]).to_iterable_dataset()
    stream = iter(WindowStream(scans, processor, seed=5, random_crops=random_crops))
    windows = [next(stream) for _ in range(2)]
    series = scan(0)
    assert [w["window_length"] for w in windows] == [WINDOW, WINDOW]
    offset = 0
    if random_crops:  # one offset in [0, 11] shifts both windows (the TRs the full windows leave over)
        matches = [o for o in range(T - 2 * WINDOW + 1) if np.array_equal(windows[0]["timeseries"], series[o : o + WINDOW])]
        assert len(matches) == 1
        offset = matches[0]
    for window, start in zip(windows, STARTS):
        np.testing.assert_array_equal(window["timeseries"], series[offset + start : offset + start + WINDOW])
    batch = StreamCollator(LcmDataCollator(processor))(windows)
    if offset == 0:
        assert_fc(batch["connectivity"], expected)
    else:
        np.testing.assert_allclose(batch["connectivity"].numpy(), processor(timeseries=[series[offset:]])["connectivity"],
                                   atol=2e-5)
    assert batch["stream_state"]["skip"] == 2


def test_processor_gives_the_training_fc(run):
    processor, splits, expected = run
    batch = processor(timeseries=[scan(0)], subject_ids=["s0"])
    assert batch["subject_index"].tolist() == [0, 0]
    assert_fc(batch["connectivity"], expected)
    training = splits["test"].select([0, 1])["connectivity"]  # what the model saw for s0 in training
    np.testing.assert_allclose(batch["connectivity"].numpy(), np.asarray(training), atol=1e-6)


def window_probabilities(model, expected):
    with torch.no_grad():
        logits = model(connectivity=torch.tensor(expected, dtype=torch.float32)).logits
    return logits[:, :2].softmax(-1).numpy()  # (2 windows, classes F, M)


def test_pipeline_predicts_the_training_windows(run, model, folder):
    from transformers import pipeline

    expected = window_probabilities(model, run[2])
    for predict in (pipeline("phenotype-prediction", model=str(folder), device="cpu"),
                    load_phenotype_pipeline(folder, device="cpu")):
        result = predict(scan(0), return_windows=True)
        got = np.array([[w["scores"]["F"], w["scores"]["M"]] for w in result["sex"]["windows"]])
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_command_windows(run, model, folder, tmp_path):
    path = tmp_path / "sub-s0_bold.npy"
    np.save(path, scan(0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "lcm-hf"), "predict", "--model", str(folder), "--timeseries",
               str(path), "--windows", "--json", "--device", "cpu"]
    process = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    windows = json.loads(process.stdout.splitlines()[-1])["predictions"]["sex"]["windows"]
    got = np.array([[w["scores"]["F"], w["scores"]["M"]] for w in windows])
    np.testing.assert_allclose(got, window_probabilities(model, run[2]), atol=1e-5)


def test_embeddings_pool_the_training_windows(run, model, folder, tmp_path):
    path = tmp_path / "sub-s0_bold.npy"
    np.save(path, scan(0))
    table = read_embeddings(embed_files(folder, [path], tmp_path / "embeddings.parquet"))
    assert table["subject_id"] == ["s0"] and table["num_windows"].tolist() == [2]
    with torch.no_grad():
        out = model.model(torch.tensor(run[2], dtype=torch.float32), return_dict=True)
        fc_features = out.memory.mean(dim=1).mean(0).numpy()
        bei_states = readout_states(model, out.layer_hidden_states).mean(0).numpy()
    np.testing.assert_allclose(table["fc_features"][0], fc_features, atol=1e-4)
    np.testing.assert_allclose(np.asarray(table["bei_states"][0]).reshape(bei_states.shape), bei_states, atol=1e-4)


def test_short_series_same_policy_in_training_and_prediction(parts, vocabulary):
    short = scan(3)[:40]
    for policy in ("drop", "pad"):
        processor = LcmProcessor(vocabulary=vocabulary, num_rois=N, window_size=WINDOW, short_series=policy)
        dataset = parts["test"]["d"].select([0]).map(lambda row: {"timeseries": short})
        with pytest.warns(RuntimeWarning, match="shorter than the window"):
            training = expand_windows(dataset, processor)
        if policy == "drop":
            assert len(training) == 0
            with pytest.raises(ValueError, match=r"subject 's0': expected at least one window of 90 TRs, got 40 TRs"):
                processor(timeseries=[short], subject_ids=["s0"])
        else:
            assert training["window_length"] == [40]
            reference = np.corrcoef(short.astype(np.float64).T)
            np.testing.assert_allclose(add_connectivity(training, processor)["connectivity"][0], reference, atol=2e-5)
            np.testing.assert_allclose(processor(timeseries=[short])["connectivity"][0], reference, atol=2e-5)
