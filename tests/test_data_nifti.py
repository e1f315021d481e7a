"""NIfTI -> ROI time series through nilearn maskers, on an offline KMeans atlas and synthetic images."""

import numpy as np
import pytest

from lcm_hf.data import make_kmeans_atlas, make_synthetic_bold, nifti_to_timeseries


@pytest.fixture(scope="module")
def atlas():
    return make_kmeans_atlas(n_regions=6, resolution=8, seed=0)


def test_kmeans_atlas(atlas):
    labels = np.unique(np.asarray(atlas.get_fdata()))
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6]


def test_extracts_region_signals(atlas):
    img, signals = make_synthetic_bold(atlas, n_timepoints=30, noise=0.05, seed=1)
    ts = nifti_to_timeseries(img, atlas)
    assert ts.shape == (30, 6) and ts.dtype == np.float32
    np.testing.assert_allclose(ts, signals, atol=0.05)


def test_cleaning_options_and_lists(atlas):
    img, signals = make_synthetic_bold(atlas, n_timepoints=40, seed=2)
    confounds = np.random.default_rng(0).standard_normal((40, 2))
    out = nifti_to_timeseries([img, img], atlas, confounds=[confounds, None], standardize="zscore_sample",
                              detrend=True, high_pass=0.01, t_r=2.0)
    assert len(out) == 2 and out[0].shape == (40, 6)
    np.testing.assert_allclose(out[1].std(axis=0, ddof=1), 1.0, atol=1e-4)
    assert not np.allclose(out[0], out[1])  # confounds were regressed out of the first
    with pytest.raises(ValueError, match="expected t_r for band-pass filtering, got t_r=None"):
        nifti_to_timeseries(img, atlas, low_pass=0.1)
    with pytest.raises(ValueError, match=r"expected one confounds entry per image \(2\), got 1"):
        nifti_to_timeseries([img, img], atlas, confounds=[confounds])
