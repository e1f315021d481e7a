"""The simulated demo cohort: schema, determinism, effects in the right FC blocks."""

import numpy as np
import pytest

from lcm_hf.demo import (
    DEMO_DATASETS,
    DEMO_NETWORKS,
    FINETUNE_DATASETS,
    PRETRAIN_DATASETS,
    demo_vocabularies,
    make_demo_cohort,
)

SMALL = {"hcp_like": 24, "abide_like": 24, "adni_like": 24, "ppmi_like": 24}


@pytest.fixture(scope="module")
def cohort():
    return make_demo_cohort(seed=3, n_subjects=SMALL, n_timepoints=60)


def block(fc, a, b):
    starts = np.cumsum([0] + list(DEMO_NETWORKS.values()))
    names = list(DEMO_NETWORKS)
    i, j = names.index(a), names.index(b)
    return fc[:, starts[i]:starts[i + 1], starts[j]:starts[j + 1]].mean(axis=(1, 2))


def test_schema_and_beis(cohort):
    assert list(cohort) == list(PRETRAIN_DATASETS + FINETUNE_DATASETS)
    assert sum(DEMO_NETWORKS.values()) == 116
    for name, ds in cohort.items():
        specific = DEMO_DATASETS[name]["bei"][0]
        assert ds.column_names == ["subject_id", "dataset", "site", "timeseries", "sex", "age", specific]
        assert ds.features["timeseries"].shape == (None, 116)
        row = ds.with_format("numpy")[0]
        assert row["timeseries"].shape == (60, 116) and row["timeseries"].dtype == np.float32
        assert len(set(ds["subject_id"])) == len(ds) == 24
        assert set(ds["dataset"]) == {name}
    specifics = [DEMO_DATASETS[n]["bei"][0] for n in PRETRAIN_DATASETS]
    assert DEMO_DATASETS["ppmi_like"]["bei"][0] not in specifics  # a NEW BEI for finetuning
    vocabs = demo_vocabularies(cohort)
    assert vocabs["adni_like"]["alzheimer"]["classes"] == ["AD", "CN", "MCI"]


def test_deterministic():
    a = make_demo_cohort(seed=1, n_subjects=5, n_timepoints=20, datasets=("abide_like",))["abide_like"]
    b = make_demo_cohort(seed=1, n_subjects=5, n_timepoints=20, datasets=("abide_like",))["abide_like"]
    c = make_demo_cohort(seed=2, n_subjects=5, n_timepoints=20, datasets=("abide_like",))["abide_like"]
    assert a["timeseries"] == b["timeseries"] and a["autism"] == b["autism"]
    assert a["timeseries"] != c["timeseries"]


def test_connectivity_representation_and_errors():
    ds = make_demo_cohort(n_subjects=4, n_timepoints=30, datasets=("ppmi_like",),
                          representation="connectivity")["ppmi_like"]
    fc = np.asarray(ds.with_format("numpy")["connectivity"])
    assert fc.shape == (4, 116, 116)
    np.testing.assert_allclose(np.diagonal(fc, axis1=1, axis2=2), 1.0)
    with pytest.raises(ValueError, match="expected dataset names in"):
        make_demo_cohort(datasets=("ukb_like",))
    with pytest.raises(ValueError, match="expected representation 'timeseries' or 'connectivity', got 'nifti'"):
        make_demo_cohort(representation="nifti")


def test_effects_shift_documented_blocks():
    ds = make_demo_cohort(seed=0, n_subjects=80, n_timepoints=150, datasets=("ppmi_like",),
                          representation="connectivity", effect_scale=2.0)["ppmi_like"]
    fc = np.asarray(ds.with_format("numpy")["connectivity"])
    pd_mask = np.array(ds["parkinson"]) == "PD"
    target = block(fc, "somatomotor", "subcortical")  # documented: PD lowers this block
    control = block(fc, "visual", "dorsal_attention")
    assert target[pd_mask].mean() < target[~pd_mask].mean() - 0.05
    assert abs(control[pd_mask].mean() - control[~pd_mask].mean()) < 0.03


@pytest.mark.slow
def test_logistic_regression_learns_but_not_trivially():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    ds = make_demo_cohort(seed=0, datasets=("abide_like",), representation="connectivity")["abide_like"]
    fc = np.asarray(ds.with_format("numpy")["connectivity"])
    upper = np.triu_indices(116, 1)
    features = fc[:, upper[0], upper[1]]
    score = cross_val_score(LogisticRegression(max_iter=2000), features, ds["autism"], cv=5).mean()
    assert 0.65 < score < 0.95
