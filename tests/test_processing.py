"""LcmProcessor: inputs, labels, post_process through the model, save/load, Auto registration."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from lcm_hf import BeiVocabulary, LcmConfig, LcmForBeiPrediction, LcmProcessor
from lcm_hf.group_connectivity_lcm import ledoit_wolf_covariance

N = 10


@pytest.fixture
def vocab():
    return BeiVocabulary([{"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
                          {"name": "age", "kind": "continuous"}])


@pytest.fixture
def processor(vocab):
    return LcmProcessor(vocabulary=vocab, num_rois=N)


def test_call_timeseries_and_phenotypes(processor):
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((40, N)), rng.standard_normal((55, N))]
    batch = processor(timeseries=series, phenotypes=[{"sex": "F", "age": 31.0}, {"sex": "M"}])
    assert batch["connectivity"].shape == (2, N, N) and batch["connectivity"].dtype == torch.float32
    np.testing.assert_allclose(batch["connectivity"][1].numpy(), np.corrcoef(series[1].T), atol=1e-5)
    np.testing.assert_array_equal(batch["labels"].numpy(), [[0, 31.0], [1, np.nan]])
    one = processor(timeseries=series[0])
    assert one["connectivity"].shape == (1, N, N) and "labels" not in one
    as_np = processor(connectivity=batch["connectivity"].numpy(), return_tensors="np")
    assert isinstance(as_np["connectivity"], np.ndarray)


def test_call_errors(processor):
    with pytest.raises(ValueError, match=r"expected connectivity of shape \(B, 10, 10\), got \(2, 9, 9\)"):
        processor(connectivity=np.zeros((2, 9, 9)))
    with pytest.raises(ValueError, match="expected exactly one of `timeseries` or `connectivity`, got neither"):
        processor()
    with pytest.raises(ValueError, match="expected 1 phenotype rows"):
        processor(connectivity=np.eye(N)[None], phenotypes=[{}, {}])
    with pytest.raises(ValueError, match="expected `num_rois` to be a positive int, got 0"):
        LcmProcessor(num_rois=0)
    with pytest.raises(ValueError, match="expected a processor with a `vocabulary`"):
        LcmProcessor(num_rois=N)(connectivity=np.eye(N)[None], phenotypes=[{}])


def test_fisher_z_option(vocab):
    processor = LcmProcessor(vocabulary=vocab, num_rois=N, fisher_z=True)
    batch = processor(timeseries=np.random.default_rng(0).standard_normal((1, 30, N)))
    assert torch.all(torch.diagonal(batch["connectivity"], dim1=1, dim2=2) == 0)


def test_post_process_with_model(processor, vocab):
    config = LcmConfig(num_rois=N, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, beis=vocab.to_config())
    model = LcmForBeiPrediction(config).eval()
    batch = processor(timeseries=np.random.default_rng(0).standard_normal((3, 30, N)),
                      phenotypes=[{"sex": "F"}, {}, {"age": 40.0}])
    with torch.no_grad():
        out = model(**batch)
    predictions = processor.post_process(out)
    assert len(predictions) == 3
    assert set(predictions[0]) == {"sex", "age"}
    assert predictions[0]["sex"]["label"] in ("F", "M")
    assert abs(sum(predictions[0]["sex"]["scores"].values()) - 1) < 1e-5
    assert isinstance(predictions[0]["age"]["value"], float)
    assert processor.post_process({"logits": out.logits}) == predictions
    with pytest.raises(TypeError, match="expected model outputs with a `logits` tensor"):
        processor.post_process([1, 2])


def test_save_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "bei_vocabulary.json").is_file()
    loaded = LcmProcessor.from_pretrained(tmp_path)
    assert loaded.vocabulary == processor.vocabulary and loaded.num_rois == N and loaded.kind == "correlation"
    LcmConfig(num_rois=N, beis=processor.vocabulary.to_config()).save_pretrained(tmp_path)
    auto = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(auto, LcmProcessor) and auto.vocabulary == processor.vocabulary


# ---------------------------------------------------------------- the preprocessing contract (issue 11)
CONTRACT = dict(atlas="toy", roi_labels=[f"r{i}" for i in range(N)], repetition_time=2.0, window_size=20,
                window_stride=10, short_series="pad", kind="correlation", fisher_z=True)


def test_contract_round_trip(vocab, tmp_path):
    processor = LcmProcessor(vocabulary=vocab, num_rois=N, **CONTRACT)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert {k: saved[k] for k in CONTRACT} == CONTRACT and saved["group_reference_file"] is None
    loaded = LcmProcessor.from_pretrained(tmp_path)
    assert {k: getattr(loaded, k) for k in CONTRACT} == CONTRACT and loaded.vocabulary == vocab
    with pytest.raises(ValueError, match=r"expected `roi_labels` to list 10 labels \(num_rois\)"):
        LcmProcessor(num_rois=N, roi_labels=["a", "b"])
    with pytest.raises(ValueError, match=r"expected `short_series` to be one of \['drop', 'pad'\], got 'keep'"):
        LcmProcessor(num_rois=N, short_series="keep")
    with pytest.raises(ValueError, match=r"expected `window_size` with `window_stride`"):
        LcmProcessor(num_rois=N, window_stride=5)


def test_windows_follow_the_contract_and_labels_repeat(vocab):
    processor = LcmProcessor(vocabulary=vocab, num_rois=N, window_size=20, window_stride=10)
    rng = np.random.default_rng(0)
    long, short = rng.standard_normal((45, N)), rng.standard_normal((12, N))
    # short_series="drop" (the default): training left such a series out, prediction refuses it (issue 17)
    with pytest.raises(ValueError, match=r"subject 'b': expected at least one window of 20 TRs, got 12 TRs: the "
                                         r"processor's contract \(short_series='drop'\)"):
        processor(timeseries=[long, short], subject_ids=["a", "b"])
    processor = LcmProcessor(vocabulary=vocab, num_rois=N, window_size=20, window_stride=10, short_series="pad")
    batch = processor(timeseries=[long, short], phenotypes=[{"sex": "F"}, {"sex": "M"}], subject_ids=["a", "b"])
    # windows at 0, 10, 20 (the one at 30 would run past the end: dropped, as in training), then b's 12 TRs
    # (short_series="pad": one window of all its TRs, as in training)
    assert batch["subject_index"].tolist() == [0, 0, 0, 1]
    expected = [np.corrcoef(long[s : s + 20].T) for s in (0, 10, 20)] + [np.corrcoef(short.T)]
    np.testing.assert_allclose(batch["connectivity"].numpy(), np.stack(expected), atol=1e-5)
    assert batch["labels"][:, 0].tolist() == [0, 0, 0, 1]
    logits = torch.randn(4, 3)
    (a, b), windows = processor.post_process(logits, batch["subject_index"]), processor.post_process(logits)
    np.testing.assert_allclose(list(a["sex"]["scores"].values()), logits[:3, :2].softmax(-1).mean(0), rtol=1e-6)
    assert a["age"]["value"] == pytest.approx(float(logits[:3, 2].mean()))
    assert b == windows[3] and len(windows) == 4


def test_ledoit_wolf_matches_sklearn():
    from sklearn.covariance import LedoitWolf

    x = np.random.default_rng(1).standard_normal((25, 7)) * np.arange(1, 8)
    np.testing.assert_allclose(ledoit_wolf_covariance(x), LedoitWolf().fit(x).covariance_, rtol=1e-10)


def test_tangent_is_fitted_once_and_refused_unfitted(vocab, tmp_path):
    from nilearn.connectome import ConnectivityMeasure

    rng = np.random.default_rng(0)
    group = [rng.standard_normal((40, N)) for _ in range(6)]
    processor = LcmProcessor(vocabulary=vocab, num_rois=N, kind="tangent")
    assert not processor.is_fitted
    message = r"expected a fitted processor for the group kind 'tangent': call processor.fit\(training_timeseries\)"
    with pytest.raises(ValueError, match=message):
        processor(timeseries=group[:2])
    processor.fit(group)
    reference = ConnectivityMeasure(kind="tangent", standardize=False).fit_transform(group)
    np.testing.assert_allclose(processor(timeseries=group)["connectivity"].numpy(), reference, atol=1e-5)
    alone = processor(timeseries=group[:1])["connectivity"]  # no longer depends on the batch mates
    np.testing.assert_allclose(alone[0].numpy(), reference[0], atol=1e-5)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "connectivity_reference.safetensors").is_file()
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.bin"))
    loaded = LcmProcessor.from_pretrained(tmp_path)
    assert loaded.is_fitted
    torch.testing.assert_close(loaded(timeseries=group[:1])["connectivity"], alone)


def test_processor_from_dataset_reads_the_contract(vocab):
    from datasets import Dataset

    from lcm_hf.data.contract import dataset_contract, processor_from_dataset

    rng = np.random.default_rng(0)
    labels = [f"r{i}" for i in range(N)]
    rows = {"subject_id": ["a", "b", "c"], "timeseries": [rng.standard_normal((30, N)).astype(np.float32)] * 3,
            "atlas": ["toy"] * 3, "roi_labels": [labels] * 3, "t_r": [2.0, 2.0, None]}
    dataset = Dataset.from_dict(rows)
    assert dataset_contract(dataset) == {"atlas": "toy", "roi_labels": labels, "repetition_time": 2.0}
    processor = processor_from_dataset({"train": dataset}, vocab, window_size=10, kind="tangent")
    assert (processor.num_rois, processor.atlas, processor.roi_labels, processor.repetition_time) == (N, "toy", labels, 2.0)
    assert processor.window_size == 10 and processor.is_fitted
    mixed = Dataset.from_dict({**rows, "atlas": ["toy", "aal", "toy"]})
    with pytest.raises(ValueError, match=r"expected one 'atlas' for the whole dataset .*got 2 values"):
        dataset_contract(mixed)
