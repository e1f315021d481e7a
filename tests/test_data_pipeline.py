"""Windows, FC precomputation, labels, subject/site-grouped splits, merging, the collator."""

import math

import numpy as np
import pytest
import torch

from lcm_hf import BeiVocabulary, LcmConfig, LcmForBeiPrediction, LcmProcessor
from lcm_hf.data import (
    LcmDataCollator,
    add_connectivity,
    add_labels,
    check_no_leakage,
    expand_windows,
    grouped_kfold,
    grouped_split,
    merge_connectome_datasets,
    union_vocabulary,
)
from lcm_hf.demo import DEMO_PSEUDO_LABELS, PRETRAIN_DATASETS, demo_vocabularies, make_demo_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_demo_cohort(seed=0, n_subjects=30, n_timepoints={"hcp_like": 50, "abide_like": 40,
                                                                 "adni_like": 40, "ppmi_like": 40})


@pytest.fixture(scope="module")
def merged(cohort):
    return merge_connectome_datasets({k: cohort[k] for k in PRETRAIN_DATASETS}, demo_vocabularies(cohort),
                                     pseudo_labels=DEMO_PSEUDO_LABELS)


def test_expand_windows_keeps_subject(cohort):
    ds = cohort["hcp_like"].select(range(3))
    windows = expand_windows(ds, 20)
    assert len(windows) == 6  # 50 TRs -> 20, 20 (the 10-TR tail is no window: issue 17)
    assert windows["subject_id"][:2] == [ds["subject_id"][0]] * 2
    assert windows["window_index"][:3] == [0, 1, 0] and windows["num_windows"][0] == 2
    lengths = [np.asarray(t).shape[0] for t in windows.with_format("numpy")["timeseries"]]
    assert lengths == [20] * 6 and windows["window_length"] == [20] * 6
    with pytest.warns(RuntimeWarning, match="kept as one window"):
        padded = expand_windows(ds, 60, short_series="pad", zero_pad=True).with_format("numpy")
    assert np.asarray(padded[0]["timeseries"]).shape == (60, 116) and list(padded["window_length"]) == [50] * 3
    with pytest.raises(ValueError, match="expected a 'timeseries' column"):
        expand_windows(add_connectivity(ds), 20)


def test_add_connectivity_matches_numpy(cohort):
    ds = cohort["abide_like"].select(range(4))
    fc = add_connectivity(ds)
    assert "timeseries" not in fc.column_names and fc.features["connectivity"].shape == (116, 116)
    got = np.asarray(fc.with_format("numpy")["connectivity"])
    series = np.asarray(ds.with_format("numpy")["timeseries"], dtype=np.float64)
    np.testing.assert_allclose(got, np.stack([np.corrcoef(s.T) for s in series]), atol=1e-5)
    assert fc["subject_id"] == ds["subject_id"]


def test_merge_union_vocabulary_and_pseudo_labels(merged, cohort):
    ds, vocab = merged
    assert vocab.names == ["sex", "task", "age", "autism", "alzheimer"]
    assert len(ds) == 90
    rows = ds.select_columns(["dataset", "task", "autism", "alzheimer"])
    for row in rows:
        if row["dataset"] != "hcp_like":
            assert row["task"] == "rest"  # declared pseudo-label
        if row["dataset"] != "abide_like":
            assert row["autism"] is None
    hcp_tasks = [r["task"] for r in rows if r["dataset"] == "hcp_like"]
    assert hcp_tasks == cohort["hcp_like"]["task"]  # real labels untouched
    labels = vocab.encode(ds.select_columns(vocab.names).to_pandas()).numpy()
    assert np.isnan(labels[:30, 3]).all() and not np.isnan(labels[30:60, 3]).any()


def test_union_vocabulary_pools_columns_and_pseudo_labels(cohort):
    datasets = {k: cohort[k] for k in ("abide_like", "ppmi_like")}
    with pytest.raises(ValueError, match="expected BEI column 'alzheimer' in any dataset, got none"):
        union_vocabulary(datasets, ["sex", "autism", "alzheimer"], ["age"])  # in neither dataset
    with pytest.warns(RuntimeWarning, match="BEIs without any label in a dataset .*'autism' in 'ppmi_like'"):
        vocab = union_vocabulary(datasets, ["sex", "task", "autism"], ["age"],
                                 pseudo_labels={"abide_like": {"task": "rest"}, "ppmi_like": {"task": "motor"}})
    assert vocab.names == ["sex", "task", "autism", "age"]
    assert vocab["task"]["classes"] == ["motor", "rest"]  # two classes only over both datasets
    assert vocab["autism"]["classes"] == ["ASD", "control"]
    merged, same = merge_connectome_datasets(datasets, vocab, {"abide_like": {"task": "rest"}})
    assert same == vocab and set(merged["task"][:30]) == {"rest"} and set(merged["task"][30:]) == {None}
    with pytest.warns(RuntimeWarning, match="'task' in 'ppmi_like'"), \
            pytest.raises(ValueError, match="at least 2 classes in categorical column 'task'"):
        union_vocabulary(datasets, ["task"], pseudo_labels={"abide_like": {"task": "rest"}})


def test_add_labels_fill_only_missing(merged):
    ds, vocab = merged
    ds = ds.select(range(28, 33))  # hcp (task known, autism missing) and abide rows
    base = np.asarray(add_labels(ds, vocab).with_format("numpy")["labels"])
    fill = np.full(base.shape, np.nan, dtype=np.float32)
    fill[:, vocab.names.index("autism")] = 1.0
    fill[:, vocab.names.index("task")] = 2.0
    filled = np.asarray(add_labels(ds, vocab, fill=fill).with_format("numpy")["labels"])
    known = ~np.isnan(base)
    np.testing.assert_array_equal(filled[known], base[known])  # never overwrites a label
    np.testing.assert_array_equal(filled[~known & ~np.isnan(fill)], fill[~known & ~np.isnan(fill)])
    assert np.isnan(filled[:2, vocab.names.index("alzheimer")]).all()  # NaN fills nothing
    with pytest.raises(ValueError, match=r"expected `fill` of shape \(5, 5\) \(rows, BEIs\), got \(5, 2\)"):
        add_labels(ds, vocab, fill=fill[:, :2])


def test_merge_errors(cohort):
    vocabs = demo_vocabularies(cohort)
    with pytest.raises(ValueError, match=r"unknown class 'sleep' for BEI 'task'; known classes: \['rest', 'wm', 'motor'\]"):
        merge_connectome_datasets({k: cohort[k] for k in ("hcp_like", "abide_like")}, vocabs,
                                  pseudo_labels={"abide_like": {"task": "sleep"}})
    with pytest.raises(ValueError, match=r"expected a vocabulary for every dataset, missing \['abide_like'\]"):
        merge_connectome_datasets({k: cohort[k] for k in ("hcp_like", "abide_like")}, {"hcp_like": vocabs["hcp_like"]})
    fc = add_connectivity(cohort["abide_like"])
    with pytest.raises(ValueError, match="expected the same data column in every dataset"):
        merge_connectome_datasets({"hcp_like": cohort["hcp_like"], "abide_like": fc}, vocabs)


def test_subject_split_no_leakage_stratified(merged):
    ds = expand_windows(merged[0], 20)  # several rows per subject
    splits = grouped_split(ds, 0.2, 0.2, stratify_by="dataset", seed=1)
    assert set(splits) == {"train", "validation", "test"}
    check_no_leakage(splits)
    assert sum(len(s) for s in splits.values()) == len(ds)
    assert set(splits["test"]["dataset"]) == set(PRETRAIN_DATASETS)  # stratified
    again = grouped_split(ds, 0.2, 0.2, stratify_by="dataset", seed=1)
    assert again["test"]["subject_id"] == splits["test"]["subject_id"]


def test_site_split(merged):
    splits = grouped_split(merged[0], 0.3, 0.0, group_by="site")
    assert set(splits) == {"train", "test"}
    check_no_leakage(splits, "site")
    check_no_leakage(splits)
    with pytest.raises(ValueError, match="expected each site in one split"):
        check_no_leakage({"a": merged[0], "b": merged[0]}, "site")
    with pytest.raises(ValueError, match="expected group column 'scanner' in the dataset"):
        grouped_split(merged[0], group_by="scanner")


def test_kfold(merged):
    folds = grouped_kfold(merged[0], 3, stratify_by="dataset")
    assert len(folds) == 3
    for fold in folds:
        check_no_leakage(fold)


def test_collator_rows_to_model_inputs(merged):
    ds, vocab = merged
    rows = [ds[i] for i in (0, 35, 70)]
    batch = LcmDataCollator(vocab)(rows)
    assert set(batch) == {"connectivity", "labels"}
    assert batch["connectivity"].shape == (3, 116, 116) and batch["connectivity"].dtype == torch.float32
    assert batch["labels"].shape == (3, 5)
    expected = np.corrcoef(np.asarray(rows[1]["timeseries"], dtype=np.float64).T)
    np.testing.assert_allclose(batch["connectivity"][1].numpy(), expected, atol=1e-5)
    assert math.isnan(batch["labels"][0, 3]) and batch["labels"][1, 1] == vocab["task"]["classes"].index("rest")

    fc = add_labels(add_connectivity(ds.select(range(4))), vocab).with_format("numpy")
    pre = LcmDataCollator(None, pass_through=("subject_id",))([fc[i] for i in range(4)])
    assert set(pre) == {"connectivity", "labels", "subject_id"} and pre["labels"].shape == (4, 5)
    np.testing.assert_array_equal(pre["labels"].numpy(), vocab.encode([ds[i] for i in range(4)]).numpy())

    config = LcmConfig(num_rois=116, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16, beis=vocab.to_config())
    out = LcmForBeiPrediction(config)(**batch)
    assert torch.isfinite(out.loss)


def test_collator_errors(merged):
    _, vocab = merged
    with pytest.raises(ValueError, match="expected rows with 'connectivity' or 'timeseries'"):
        LcmDataCollator(vocab)([{"sex": "F"}])
    collator = LcmDataCollator(LcmProcessor(vocabulary=vocab, num_rois=90))
    with pytest.raises(ValueError, match=r"expected connectivity of shape \(B, 90, 90\), got \(1, 116, 116\)"):
        collator([{"connectivity": np.eye(116)}])
    with pytest.raises(TypeError, match="expected an LcmProcessor, a BeiVocabulary or None, got dict"):
        LcmDataCollator({})


def test_add_labels_vocab_order():
    vocab = BeiVocabulary([{"name": "a", "kind": "continuous"}])
    from datasets import Dataset

    ds = add_labels(Dataset.from_dict({"a": [1.0, None]}), vocab)
    assert ds["labels"][0] == [1.0] and math.isnan(ds["labels"][1][0])
