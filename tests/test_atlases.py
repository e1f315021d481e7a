"""Named coordinate atlases bundled with nilearn: coordinates and labels offline, NIfTI parcellation with spheres."""

import socket

import numpy as np
import pytest

from lcm_hf.data.atlases import SPHERE_ATLASES, atlas_coordinates, is_sphere_atlas, sphere_masker


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name, first", [("power_2011", "power_1"), ("dosenbach_2010", "vmPFC 1"),
                                         ("seitzman_2018", "seitzman_1")])
def test_atlas_coordinates_offline(no_network, name, first):
    coordinates, labels = atlas_coordinates(name)
    assert coordinates.shape == (SPHERE_ATLASES[name]["num_rois"], 3) and labels[0] == first
    assert len(set(labels)) == len(labels)
    assert np.all(np.abs(coordinates) < 110)  # MNI millimetres, inside the head
    assert is_sphere_atlas(name) and not is_sphere_atlas("aal") and not is_sphere_atlas(None)


def test_power_coordinates_are_the_published_ones():
    coordinates, _ = atlas_coordinates("power_2011")
    np.testing.assert_array_equal(coordinates[0], [-25, -98, -12])  # Power et al. 2011, ROI 1
    with pytest.raises(ValueError, match=r"expected a named coordinate atlas among .*, got 'power'"):
        atlas_coordinates("power")


def test_nifti_to_timeseries_with_a_named_atlas(no_network):
    from lcm_hf.data.nifti import make_kmeans_atlas, make_synthetic_bold, nifti_to_timeseries

    atlas = make_kmeans_atlas(n_regions=8, resolution=8)
    bold, signals = make_synthetic_bold(atlas, n_timepoints=30, noise=0.01)
    series = nifti_to_timeseries(bold, "dosenbach_2010")
    assert series.shape == (30, 160) and series.dtype == np.float32
    # each sphere carries the signal of the synthetic region around its centre
    coordinates, _ = atlas_coordinates("dosenbach_2010")
    voxels = np.rint(np.linalg.inv(atlas.affine) @ np.c_[coordinates, np.ones(160)].T)[:3].astype(int).T
    regions = np.asarray(atlas.get_fdata()).astype(int)[tuple(voxels.T)]
    inside = regions > 0
    correlations = [np.corrcoef(series[:, i], signals[:, regions[i] - 1])[0, 1] for i in np.flatnonzero(inside)]
    assert inside.sum() > 100 and np.median(correlations) > 0.9
    assert sphere_masker("seitzman_2018").radius == 4.0


@pytest.mark.slow
def test_attention_maps_draw_glass_brains_from_the_processor_atlas(tmp_path):
    import importlib.util
    from pathlib import Path

    import torch
    from datasets import Dataset

    from lcm_hf import LcmConfig, LcmForBeiPrediction, LcmProcessor

    beis = [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]}]
    config = LcmConfig(num_rois=264, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=16, beis=beis)
    torch.manual_seed(0)
    model = LcmForBeiPrediction(config).eval()
    model.save_pretrained(tmp_path / "model")
    LcmProcessor(vocabulary=beis, num_rois=264, atlas="power_2011").save_pretrained(tmp_path / "model")
    fc = np.tile(np.eye(264, dtype=np.float32), (4, 1, 1))
    Dataset.from_dict({"subject_id": list("abcd"), "dataset": ["d"] * 4, "site": ["s"] * 4, "connectivity": fc,
                       "sex": ["F", "M", "F", "M"]}).save_to_disk(str(tmp_path / "data"))
    script = Path(__file__).resolve().parents[1] / "modeling" / "attention_maps.py"
    spec = importlib.util.spec_from_file_location("attention_maps_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"), "--output-dir",
                        str(tmp_path / "out"), "--formats", "png", "--no-per-layer"]) == 0
    assert list((tmp_path / "out").glob("**/glass_brain_sex_*.png"))  # no --roi-coords given
