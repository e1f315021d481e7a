"""NIfTI -> ROI time series through nilearn maskers (and the NIfTI folder importer / CLI), on an offline
KMeans atlas and synthetic images."""

import subprocess
import sys
from pathlib import Path

import datasets
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from lcm_hf.data import import_nifti_folder, make_kmeans_atlas, make_synthetic_bold, nifti_to_timeseries


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


def test_import_nifti_folder_and_cli(tmp_path):
    atlas = make_kmeans_atlas(n_regions=5, resolution=8, seed=0)
    raw = tmp_path / "raw"
    raw.mkdir()
    nib.save(atlas, raw / "atlas.nii.gz")  # in the folder too: must not be read as a scan
    for i in range(1, 4):
        img, _ = make_synthetic_bold(atlas, n_timepoints=20 + i, seed=i)
        nib.save(img, raw / f"sub-0{i}_task-rest_bold.nii.gz")
    pd.DataFrame({"participant_id": ["01", "02", "03"], "dx": ["PD", "control", "PD"],
                  "age": [61.0, 58.5, 70.0]}).to_csv(raw / "phenotypes.csv", index=False)

    ds = import_nifti_folder(raw, raw / "atlas.nii.gz", raw / "phenotypes.csv", id_column="participant_id")
    assert ds["subject_id"] == ["01", "02", "03"] and ds["dx"] == ["PD", "control", "PD"]
    assert ds["age"] == pytest.approx([61.0, 58.5, 70.0]) and ds["task"] == ["rest"] * 3
    assert ds.features["timeseries"].shape == (None, 5)
    rows = ds.with_format("numpy")
    for i in range(1, 4):
        ts = np.asarray(rows[i - 1]["timeseries"])
        assert ts.shape == (20 + i, 5)
        np.testing.assert_array_equal(ts, nifti_to_timeseries(str(raw / f"sub-0{i}_task-rest_bold.nii.gz"), atlas))

    bad = tmp_path / "bad"
    bad.mkdir()
    nib.save(nib.Nifti1Image(np.zeros(atlas.shape, np.float32), atlas.affine), bad / "sub-09_bold.nii.gz")
    with pytest.raises(ValueError, match=r"expected a 4-D NIfTI scan .* in .*sub-09_bold\.nii\.gz"):
        import_nifti_folder(bad, atlas)
    (bad / "sub-09_bold.nii.gz").unlink()
    img, _ = make_synthetic_bold(atlas, n_timepoints=10)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:10], img.affine), bad / "sub-08_bold.nii.gz")  # half a brain
    with pytest.raises(ValueError, match=r"expected 5 regions of the atlas image in .*sub-08_bold\.nii\.gz, got 4"):
        import_nifti_folder(bad, atlas)

    script = Path(__file__).resolve().parents[1] / "processing" / "build_dataset.py"
    out = tmp_path / "built"
    result = subprocess.run(
        [sys.executable, str(script), str(raw), "--format", "nifti", "--atlas-image", str(raw / "atlas.nii.gz"),
         "--t-r", "2.0", "--phenotypes", str(raw / "phenotypes.csv"), "--id-column", "participant_id",
         "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded["subject_id"] == ["01", "02", "03"] and loaded["dx"] == ["PD", "control", "PD"]
    np.testing.assert_array_equal(np.asarray(loaded.with_format("numpy")[2]["timeseries"]),
                                  np.asarray(rows[2]["timeseries"]))
