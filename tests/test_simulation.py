"""The transfer simulator (lcm_hf.data.simulation): schema, reproducibility, and its controls' known answer."""

import numpy as np
import pytest

from lcm_hf.data.schema import validate_connectome_dataset
from lcm_hf.data.simulation import CLASSES, TARGET, TransferWorld


@pytest.fixture(scope="module")
def world():
    return TransferWorld(num_rois=12, num_networks=4, num_shared_factors=3, num_private_factors=3,
                         num_pretraining_datasets=3, beis_per_dataset=2, seed=3)


def _labels(dataset, column):
    return np.array([value == CLASSES[1] for value in dataset[column]], dtype=int)


def _cv_auc(features, labels):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    return cross_val_score(LogisticRegression(max_iter=1000), features, labels,
                           cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="roc_auc").mean()


def test_corpus_follows_the_schema_and_is_reproducible(world):
    corpus = world.pretraining_corpus(61, seed=1)
    assert sorted(corpus.datasets) == world.pretraining_names
    assert sum(len(d) for d in corpus.datasets.values()) == 61
    first = corpus.datasets["pre_00"]
    validate_connectome_dataset(first)
    assert set(first.column_names) == {"subject_id", "dataset", "site", "connectivity", "pre_00_b0", "pre_00_b1"}
    fc = np.stack(first.with_format("numpy")[:]["connectivity"])
    assert fc.shape == (len(first), 12, 12) and fc.dtype == np.float32
    np.testing.assert_array_equal(fc, fc.transpose(0, 2, 1))
    np.testing.assert_array_equal(fc[:, np.arange(12), np.arange(12)], 1.0)
    assert np.abs(fc[:, ~np.eye(12, dtype=bool)]).max() < 1
    again = world.pretraining_corpus(61, seed=1).datasets["pre_00"].with_format("numpy")[:]["connectivity"]
    np.testing.assert_array_equal(fc, np.stack(again))
    other = world.pretraining_corpus(61, seed=2).datasets["pre_00"].with_format("numpy")[:]["connectivity"]
    assert not np.allclose(fc, np.stack(other))
    assert len(set(first["site"])) == world.sites_per_dataset


def test_fc_is_the_documented_function_of_the_factor_scores():
    # Without subject noise, dataset or site offsets, arctanh(FC) is B + sigma * (sum h P + sum g Q) off the diagonal.
    world = TransferWorld(num_rois=10, num_networks=3, num_shared_factors=2, num_private_factors=2, noise_sd=0.0,
                          dataset_sd=0.0, site_sd=0.0, sigma_factor=0.1, seed=5)
    cohort = world.downstream_cohort(7, "positive", seed=0)
    fc = np.stack(cohort.datasets["positive"].with_format("numpy")[:]["connectivity"]).astype(np.float64)
    h, g = cohort.shared["positive"], cohort.private["positive"]
    expected = world.base + 0.1 * (np.einsum("sk,kij->sij", h, world.shared_patterns)
                                   + np.einsum("sm,mij->sij", g, world.private_patterns))
    off = ~np.eye(10, dtype=bool)
    np.testing.assert_allclose(np.arctanh(fc[:, off]), expected[:, off], atol=1e-5)
    # shared and private patterns touch disjoint edges
    assert not np.any((world.shared_patterns.sum(0) != 0) & (world.private_patterns.sum(0) != 0))


@pytest.mark.parametrize("control, predictable", [("positive", True), ("negative", False)])
def test_target_is_predictable_from_the_pretraining_beis_factors_only_in_the_positive_control(world, control,
                                                                                             predictable):
    # The pretraining BEIs' latent scores (a_b . h), evaluated on the downstream subjects, predict the positive
    # control's new BEI (it loads on the same shared factors) and not the negative control's (private factors).
    cohort = world.downstream_cohort(400, control, seed=0)
    labels = _labels(cohort.datasets[control], TARGET)
    assert 0.3 < labels.mean() < 0.7
    scores = world.pretraining_scores(cohort.shared[control])
    assert scores.shape == (400, len(world.pretraining_beis))
    auc = _cv_auc(scores, labels)
    if predictable:
        assert auc > 0.85
    else:
        assert 0.4 < auc < 0.6
    # the labels follow the known score: its own factors predict it in both controls
    own = cohort.shared[control] if control == "positive" else cohort.private[control]
    assert _cv_auc(own, labels) > 0.85


def test_pretraining_beis_follow_their_scores(world):
    corpus = world.pretraining_corpus(300, seed=0)
    for name, dataset in corpus.datasets.items():
        for bei, score in corpus.scores[name].items():
            labels = _labels(dataset, bei)
            np.testing.assert_allclose(score, corpus.shared[name] @ world.loadings[bei][1])
            assert np.corrcoef(score, labels)[0, 1] > 0.6


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_rois": 1}, "num_rois"), ({"num_networks": 30}, "num_networks"),
     ({"num_shared_factors": 20, "num_networks": 3}, "num_shared_factors"), ({"noise_sd": -1.0}, "noise_sd"),
     ({"beis_per_dataset": 0}, "beis_per_dataset")],
)
def test_bad_settings_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransferWorld(**kwargs)


def test_bad_draws_name_the_field(world):
    with pytest.raises(ValueError, match="control"):
        world.downstream_cohort(10, "neutral")
    with pytest.raises(ValueError, match="num_subjects"):
        world.pretraining_corpus(2)
    with pytest.raises(ValueError, match="shared"):
        world.pretraining_scores(np.zeros((4, 7)))
