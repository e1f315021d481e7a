"""Model inputs (issue 10 item 5, issue 8 item 4): float64 cast, empty batches, complex values, absurd magnitudes,
blank scans refused or warned about by name; `connectivity` checked once per forward, values in the collator."""

import warnings

import numpy as np
import pytest
import torch

import lcm_hf.modeling_lcm as modeling
from lcm_hf import LcmForBeiPrediction
from lcm_hf.connectivity_checks_lcm import check_connectivity_values
from lcm_hf.connectivity_lcm import pearson_connectivity
from lcm_hf.data import LcmDataCollator
from lcm_testing import make_tiny_config, random_connectivity


def tiny_model():
    torch.manual_seed(0)
    return LcmForBeiPrediction(make_tiny_config()).eval()


def test_float64_connectivity_is_cast_to_the_model_dtype():
    model = tiny_model()
    fc = random_connectivity(3, 16)
    with torch.no_grad():
        reference = model(fc).logits
        as_float64 = model(fc.double()).logits
        backbone = model.model(fc.double()).last_hidden_state
    assert as_float64.dtype == torch.float32 and backbone.dtype == torch.float32
    torch.testing.assert_close(as_float64, reference)


def test_empty_batch_and_complex_values_are_refused_by_name():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"expected at least one `connectivity` matrix \(B >= 1\), got an empty batch"):
        model(torch.zeros(0, 16, 16))
    with pytest.raises(TypeError, match=r"expected real `connectivity`, got complex values \(torch.complex64\)"):
        model(random_connectivity(2, 16).to(torch.complex64))
    with pytest.raises(TypeError, match=r"expected real `timeseries`, got complex values"):
        pearson_connectivity(np.ones((20, 4)) + 1j)


def test_connectivity_is_checked_once_per_forward(monkeypatch):
    calls = []
    original = modeling.check_connectivity

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(modeling, "check_connectivity", counting)
    model = tiny_model()
    model(random_connectivity(2, 16))
    assert len(calls) == 1  # the head checks, the backbone trusts it
    model.model(random_connectivity(2, 16))
    assert len(calls) == 2  # the backbone alone checks its input


def test_absurd_time_series_magnitudes_are_refused_by_subject():
    series = np.random.default_rng(0).standard_normal((2, 50, 4))
    series[1] *= 1e30
    with pytest.raises(ValueError, match=r"expected time series of sane magnitude, got values up to .*e\+30 for subject 'b'"):
        pearson_connectivity(series, subject_ids=["a", "b"])


def test_connectivity_values_are_checked_by_name():
    fc = random_connectivity(2, 4)
    check_connectivity_values(fc)  # fine
    with pytest.raises(ValueError, match=r"expected `connectivity` values within \+-1e\+06 .* got 1e\+09 for subject 'b'"):
        check_connectivity_values(fc * torch.tensor([1.0, 1e9])[:, None, None], subject_ids=["a", "b"])
    with pytest.raises(ValueError, match=r"expected finite `connectivity`, got NaN or inf values for subject 'a'"):
        check_connectivity_values(torch.full((1, 4, 4), float("nan")), subject_ids=["a"])


def test_blank_scans_are_warned_about_by_name():
    series = np.random.default_rng(0).standard_normal((2, 50, 4)).astype(np.float32)
    series[1] = 3.0  # a blank scan: every ROI constant
    with pytest.warns(RuntimeWarning, match=r"blank scan \(every ROI constant\): subject 'sub-02'"):
        pearson_connectivity(series, subject_ids=["sub-01", "sub-02"])
    rows = [{"timeseries": s, "subject_id": f"sub-0{i + 1}"} for i, s in enumerate(series)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LcmDataCollator()(rows)
    messages = [str(w.message) for w in caught]
    assert any("blank scan" in m and "'sub-02'" in m for m in messages), messages
    assert any("blank connectivity" in m and "'sub-02'" in m for m in messages), messages


def test_collator_validation_can_be_switched_off():
    rows = [{"connectivity": np.full((4, 4), np.nan, dtype=np.float32)}]
    with pytest.raises(ValueError, match="expected finite `connectivity`"):
        LcmDataCollator()(rows)
    assert torch.isnan(LcmDataCollator(validate=False)(rows)["connectivity"]).all()


def test_processor_checks_ready_connectivity_by_subject():
    from lcm_hf import LcmProcessor

    processor = LcmProcessor(vocabulary=[{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}], num_rois=4)
    with pytest.raises(ValueError, match=r"expected finite `connectivity`, got NaN or inf values for subject 'x'"):
        processor(connectivity=torch.full((1, 4, 4), float("nan")), subject_ids=["x"])
    with pytest.raises(TypeError, match=r"expected real connectivity, got complex values"):
        processor(connectivity=torch.zeros(1, 4, 4, dtype=torch.complex64))
    with pytest.warns(RuntimeWarning, match=r"blank connectivity .*: subject 'y'"):
        processor(connectivity=torch.eye(4)[None], subject_ids=["y"])
