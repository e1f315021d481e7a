"""Connectivity maths against independent references (np.corrcoef float64, nilearn)."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nilearn.connectome import ConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance

from lcm_hf.connectivity_lcm import (
    compute_connectivity,
    covariance,
    fisher_z,
    partial_correlation,
    pearson_connectivity,
)
from lcm_hf.windows_lcm import sliding_windows


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((12, 12)) * 0.3 + np.eye(12)
    return rng.standard_normal((4, 80, 12)) @ mixing * 5.0 + 100.0  # offset: centering must be exact


def corrcoef_batch(x):
    return np.stack([np.corrcoef(s.T) for s in np.asarray(x, dtype=np.float64)])


def test_pearson_equals_numpy_corrcoef_float64(series):
    fc = pearson_connectivity(series)
    assert fc.dtype == torch.float32 and fc.shape == (4, 12, 12)
    np.testing.assert_allclose(fc.numpy(), corrcoef_batch(series), atol=1e-5)


def test_pearson_float64_on_request(series):
    fc = pearson_connectivity(series, dtype=torch.float64)
    assert fc.dtype == torch.float64
    np.testing.assert_allclose(fc.numpy(), corrcoef_batch(series), atol=1e-12)


def test_pearson_equals_nilearn_empirical(series):
    measure = ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance(), standardize=False)
    reference = measure.fit_transform(list(series))
    np.testing.assert_allclose(pearson_connectivity(series).numpy(), reference, atol=1e-5)


def test_nilearn_default_is_shrunk_not_pearson(series):
    """nilearn's default estimator (Ledoit-Wolf) shrinks: it differs from Pearson (documented)."""
    default = ConnectivityMeasure(kind="correlation", standardize=False).fit_transform(list(series))
    assert np.abs(default - corrcoef_batch(series)).max() > 1e-3
    ours = compute_connectivity(series, kind="ledoit-wolf correlation")
    np.testing.assert_allclose(ours.numpy(), default, atol=1e-5)


def test_single_subject_and_variable_lengths(series):
    one = pearson_connectivity(series[0])
    assert one.shape == (12, 12)
    subjects = [series[0][:30], series[1][:80], series[2][:5]]
    fc = pearson_connectivity(subjects)
    for got, subject in zip(fc, subjects):
        np.testing.assert_allclose(got.numpy(), np.corrcoef(subject.T), atol=1e-5)


def test_lengths_ignore_padding(series):
    padded = series.copy()
    padded[1, 50:] = 0.0
    fc = pearson_connectivity(padded, lengths=[80, 50, 80, 80])
    np.testing.assert_allclose(fc[1].numpy(), np.corrcoef(series[1][:50].T), atol=1e-5)


def test_lengths_shape_error(series):
    with pytest.raises(ValueError, match=r"expected `lengths` of shape \(4,\), got \(2,\)"):
        pearson_connectivity(series, lengths=[3, 4])


def test_constant_roi_zero_row_with_warning(series):
    x = series.copy()
    x[2, :, 7] = 3.25
    with pytest.warns(RuntimeWarning, match=r"subject 'c' ROI 'roi7'"):
        fc = pearson_connectivity(x, subject_ids=list("abcd"), roi_names=[f"roi{i}" for i in range(12)])
    assert torch.all(fc[2, 7] == 0) and torch.all(fc[2, :, 7] == 0)
    np.testing.assert_allclose(fc[0].numpy(), np.corrcoef(series[0].T), atol=1e-5)


def test_nan_raises_naming_subject(series):
    x = series.copy()
    x[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match=r"expected finite time series, got NaN or inf values for subject 'b'"):
        pearson_connectivity(x, subject_ids=list("abcd"))
    x[1, 3, 2] = np.inf
    with pytest.raises(ValueError, match="for subject 1"):
        pearson_connectivity(x)


def test_too_few_timepoints_raises_naming_subject(series):
    with pytest.raises(ValueError, match=r"expected at least 3 time points for subject 'x', got 2"):
        pearson_connectivity([series[0][:10], series[1][:2]], subject_ids=["w", "x"])


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expected `timeseries` of shape \(T, N\) or \(B, T, N\), got \(2, 3, 4, 5\)"):
        pearson_connectivity(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="expected every time series to have 4 ROIs"):
        pearson_connectivity([np.zeros((5, 4)), np.zeros((5, 3))])
    with pytest.raises(TypeError, match="expected dtype torch.float32 or torch.float64"):
        pearson_connectivity(np.zeros((5, 4)), dtype=torch.float16)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_time=st.integers(3, 60),
    n_rois=st.integers(2, 10),
    scale=st.floats(1e-3, 1e3),
    offset=st.floats(-1e3, 1e3),
)
@example(seed=3, n_time=3, n_rois=10, scale=1e-3, offset=513.0)  # one ROI constant in float32
def test_property_symmetric_unit_diagonal_bounded(seed, n_time, n_rois, scale, offset):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, n_time, n_rois)) * scale + offset
    constant = np.ptp(x.astype(np.float32), axis=1) == 0  # (2, N): a ROI constant once in float32 (tiny scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the constant-ROI warning, tested elsewhere
        fc = pearson_connectivity(x).numpy()
    assert np.array_equal(fc, np.swapaxes(fc, 1, 2))
    assert np.array_equal(np.diagonal(fc, axis1=1, axis2=2), np.where(constant, 0.0, 1.0))  # constant ROI: 0
    assert np.all(fc >= -1.0) and np.all(fc <= 1.0)


def test_partial_correlation_equals_nilearn(series):
    reference = ConnectivityMeasure(kind="partial correlation", cov_estimator=EmpiricalCovariance(),
                                    standardize=False).fit_transform(list(series))
    np.testing.assert_allclose(partial_correlation(series).numpy(), reference, atol=1e-5)


def test_partial_correlation_singular_raises():
    with pytest.raises(ValueError, match=r"expected an invertible covariance .* for subject 0, got T=5 <= N=8"):
        partial_correlation(np.random.default_rng(0).standard_normal((1, 5, 8)))


def test_covariance_equals_numpy(series):
    np.testing.assert_allclose(covariance(series).numpy(), np.stack([np.cov(s.T) for s in series]), rtol=1e-10)


def test_nilearn_kinds(series):
    tangent = compute_connectivity(series, kind="tangent")
    reference = ConnectivityMeasure(kind="tangent", standardize=False).fit_transform(list(series))
    np.testing.assert_allclose(tangent.numpy(), reference, atol=1e-5)
    shrunk = compute_connectivity(series, kind="shrunk covariance")
    assert shrunk.shape == (4, 12, 12)
    with pytest.raises(ValueError, match="expected `kind` to be one of"):
        compute_connectivity(series, kind="granger")


def test_fisher_z_safe_diagonal(series):
    fc = pearson_connectivity(series)
    z = fisher_z(fc)
    assert torch.isfinite(z).all()
    assert torch.all(torch.diagonal(z, dim1=1, dim2=2) == 0)
    off = ~torch.eye(12, dtype=torch.bool)
    np.testing.assert_allclose(z[:, off].numpy(), np.arctanh(fc[:, off].double().numpy()), atol=1e-4)
    assert torch.isfinite(fisher_z(fc, diagonal=None)).all()
    with pytest.raises(ValueError, match=r"expected square matrices of shape \(..., N, N\), got \(3, 4\)"):
        fisher_z(torch.zeros(3, 4))
    fz = compute_connectivity(series, fisher_z=True)
    np.testing.assert_allclose(fz.numpy(), z.numpy())


def test_sliding_windows_non_overlapping_full_windows():
    x = torch.arange(1200 * 2, dtype=torch.float32).reshape(1200, 2)
    windows, lengths = sliding_windows(x, 500)
    assert windows.shape == (2, 500, 2) and lengths.tolist() == [500, 500]  # the 200-TR tail is no window
    assert torch.equal(windows[1], x[500:1000])
    windows, lengths = sliding_windows(x, 500, stride=250)
    assert lengths.tolist() == [500, 500, 500] and torch.equal(windows[2], x[500:1000])
    short, lengths = sliding_windows(x[:100], 500, short_series="pad")
    assert short.shape == (1, 500, 2) and lengths.tolist() == [100]
    assert torch.equal(short[0, :100], x[:100]) and torch.all(short[0, 100:] == 0)
    assert sliding_windows(x[:100], 500)[0].shape == (0, 500, 2)
    with pytest.raises(ValueError, match="expected `window_size` to be a positive int, got 0"):
        sliding_windows(x, 0)


def test_window_fc_with_lengths_ignores_padding():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((700, 5))
    windows, lengths = sliding_windows(x[500:], 500, short_series="pad")  # one zero-padded window of 200 TRs
    fc = pearson_connectivity(windows, lengths)
    np.testing.assert_allclose(fc[0].numpy(), np.corrcoef(x[500:].T), atol=1e-5)


def test_no_warning_on_valid_input(series):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pearson_connectivity(series)
