"""LcmProcessor: inputs, labels, post_process through the model, save/load, Auto registration."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from lcm_hf import BeiVocabulary, LcmConfig, LcmForBeiPrediction, LcmProcessor

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
    assert abs(sum(predictions[0]["sex"]["probabilities"].values()) - 1) < 1e-5
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
