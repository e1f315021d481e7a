"""Windows: the FC of a zero-padded window ignores the padding; short series are reported and follow a
stated policy (issue 9, item 3); a tail shorter than a window is never a window (issue 17, item 1)."""

import warnings

import numpy as np
import pytest
import torch
from datasets import Dataset

from lcm_hf.data import LcmDataCollator, add_connectivity, connectome_features, expand_windows
from lcm_hf.windows_lcm import sliding_windows, windowed_connectivity

RNG = np.random.default_rng(0)


def raw_dataset(lengths, n=5, offset=100.0):
    """Raw (not demeaned) signals: a large offset plus a per-ROI drift, so padding zeros would matter."""
    series = [(offset + RNG.standard_normal((t, n)) + np.linspace(0, 3, t)[:, None] * RNG.standard_normal(n))
              .astype(np.float32) for t in lengths]
    columns = {"subject_id": [f"s{i}" for i in range(len(lengths))], "scan_id": ["task-rest"] * len(lengths),
               "dataset": ["d"] * len(lengths), "site": ["x"] * len(lengths), "timeseries": series}
    return Dataset.from_dict(columns, features=connectome_features(n, scan_id=True)), series


def test_padded_window_fc_is_over_valid_trs_only():
    ds, series = raw_dataset([130, 30])
    for zero_pad in (True, False):
        windows = expand_windows(ds, 50, short_series="pad", zero_pad=zero_pad)
        assert windows["window_length"] == [50, 50, 30]  # 130 TRs: two full windows, the 30-TR tail dropped
        stored = np.asarray(windows.with_format("numpy")[2]["timeseries"])
        assert stored.shape == ((50, 5) if zero_pad else (30, 5))
        expected = np.corrcoef(series[1].astype(np.float64).T)  # the short series, padded
        fc = np.asarray(add_connectivity(windows).with_format("numpy")["connectivity"])
        np.testing.assert_allclose(fc[2], expected, atol=1e-5)
        np.testing.assert_allclose(fc[0], np.corrcoef(series[0][:50].astype(np.float64).T), atol=1e-5)
        np.testing.assert_allclose(fc[1], np.corrcoef(series[0][50:100].astype(np.float64).T), atol=1e-5)
        rows = [windows[i] for i in range(3)]  # the collator path (FC per batch) agrees
        batch = LcmDataCollator(None)(rows)
        np.testing.assert_allclose(batch["connectivity"][2].numpy(), expected, atol=1e-5)


def test_windowed_connectivity_matches_numpy_on_raw_signal():
    x = 100.0 + RNG.standard_normal((1100, 4))
    fc, lengths = windowed_connectivity(x, 500, dtype=torch.float64)
    assert lengths.tolist() == [500, 500]  # the 100-TR tail is no window
    np.testing.assert_allclose(fc[0].numpy(), np.corrcoef(x[:500].T), atol=1e-10)
    np.testing.assert_allclose(fc[1].numpy(), np.corrcoef(x[500:1000].T), atol=1e-10)
    fc32, _ = windowed_connectivity(x, 500, fisher_z=True)
    assert fc32.dtype == torch.float32 and torch.all(torch.diagonal(fc32, dim1=1, dim2=2) == 0)
    empty, lengths = windowed_connectivity(x[:100], 500)  # short series dropped by default
    assert empty.shape == (0, 4, 4) and lengths.numel() == 0
    padded, lengths = windowed_connectivity(x[:100], 500, short_series="pad", dtype=torch.float64)
    assert lengths.tolist() == [100]
    np.testing.assert_allclose(padded[0].numpy(), np.corrcoef(x[:100].T), atol=1e-10)
    with pytest.raises(ValueError, match="expected a torch connectivity kind"):
        windowed_connectivity(x, 500, kind="tangent")


def test_sliding_windows_short_series_policy():
    x = torch.arange(100 * 2, dtype=torch.float32).reshape(100, 2)
    assert sliding_windows(x, 500, short_series="pad")[1].tolist() == [100]
    assert sliding_windows(x, 500, short_series="drop")[0].shape == (0, 500, 2)
    assert sliding_windows(x, 500)[0].shape == (0, 500, 2)  # "drop" by default, as the processor
    assert sliding_windows(x, 40, short_series="pad")[1].tolist() == [40, 40]  # a long series: full windows only
    assert sliding_windows(x[:2], 40, short_series="pad")[0].shape == (0, 40, 2)  # no FC of 2 TRs
    with pytest.raises(ValueError, match=r"expected `short_series` to be one of \['drop', 'pad'\], got 'keep'"):
        sliding_windows(x, 500, short_series="keep")


def test_short_series_reported_and_handled():
    ds, series = raw_dataset([120, 20, 2, 35])
    with pytest.warns(RuntimeWarning, match=r"3 of 4 series are shorter than the window \(50 TRs\), kept as one window "
                                            r"of their valid TRs \(short_series='pad'\); 1 with fewer than 3 TRs "
                                            r"dropped: s1/task-rest \(20 TRs\), s2/task-rest \(2 TRs\), "
                                            r"s3/task-rest \(35 TRs\)"):
        padded = expand_windows(ds, 50, short_series="pad")
    assert padded["subject_id"] == ["s0"] * 2 + ["s1", "s3"] and padded["window_length"] == [50, 50, 20, 35]
    fc = np.asarray(add_connectivity(padded).with_format("numpy")["connectivity"])
    np.testing.assert_allclose(fc[2], np.corrcoef(series[1].astype(np.float64).T), atol=1e-5)
    with pytest.warns(RuntimeWarning, match=r"3 of 4 series are shorter than the window \(50 TRs\), dropped "
                                            r"\(short_series='drop'\): s1/task-rest \(20 TRs\)"):
        dropped = expand_windows(ds, 50, short_series="drop")
    assert dropped["subject_id"] == ["s0"] * 2
    with pytest.warns(RuntimeWarning, match=r"dropped \(short_series='drop'\)"):
        assert len(expand_windows(ds, 50)) == 2  # "drop" by default, as the processor and training
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(expand_windows(ds.select([0]), 50)) == 2  # nothing short: no warning
    with pytest.raises(ValueError, match=r"expected `short_series` to be one of \['drop', 'pad'\], got 'cut'"):
        expand_windows(ds, 50, short_series="cut")
