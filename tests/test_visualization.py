"""Cross-attention maps, tables and figures on a tiny model (made-up ROI names and coordinates)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lcm_hf import LcmForBeiPrediction  # noqa: E402
from lcm_hf.analysis.attention import attention_table, collect_cross_attention, top_rois  # noqa: E402
from lcm_hf.analysis.plots import (  # noqa: E402
    plot_attention_heatmap,
    read_roi_table,
    save_figure,
    write_attention_report,
)
from lcm_hf.demo import demo_roi_names  # noqa: E402
from lcm_testing import make_tiny_config, random_connectivity  # noqa: E402

ROIS = [f"roi_{chr(97 + i)}" for i in range(16)]


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config()).eval()
    fc = random_connectivity(10, 16, seed=2)
    labels = torch.tensor([[i % 2, i % 3, 20.0 + i] for i in range(10)], dtype=torch.float32)
    labels[0, 1] = float("nan")  # a missing diagnosis is left out of the class maps
    return model, fc, labels


def test_summary_matches_direct_averages(model_and_data):
    model, fc, labels = model_and_data
    summary = collect_cross_attention(model, fc, labels, roi_names=ROIS, batch_size=4)
    with torch.no_grad():
        attention = model(fc, labels=labels, output_attentions=True).cross_attentions.mean(dim=2).numpy()
    assert summary.token_maps.shape == (3, 6, 16) and summary.num_samples == 10
    np.testing.assert_allclose(summary.token_maps, attention.mean(0), atol=1e-6)
    np.testing.assert_allclose(summary.token_maps.sum(-1), 1.0, atol=1e-5)  # softmax over ROIs
    # diagnosis (tokens 2..4): class "mci" (index 1) token on samples labelled mci vs the rest
    dx = labels[:, 1].numpy()
    is_mci, is_rest = dx == 1, (dx != 1) & ~np.isnan(dx)
    np.testing.assert_allclose(summary.class_maps["diagnosis"][:, 1], attention[is_mci][:, :, 3].mean(0), atol=1e-6)
    np.testing.assert_allclose(summary.rest_maps["diagnosis"][:, 1], attention[is_rest][:, :, 3].mean(0), atol=1e-6)
    np.testing.assert_allclose(summary.contrast_maps("diagnosis")[:, 1],
                               attention[is_mci][:, :, 3].mean(0) - attention[is_rest][:, :, 3].mean(0), atol=1e-6)
    assert summary.class_counts["diagnosis"].tolist() == [3, 3, 3]
    # readout-layer histograms count every sample once for categorical BEIs ("max" policy)
    assert summary.layer_counts["sex"].sum() == 10 and summary.layer_counts["age"].sum() == 0
    assert summary.true_class_layer_counts["diagnosis"].sum() == 9
    assert summary.readout_layer["sex"] == int(np.argmax(summary.layer_counts["sex"]))


def test_best_layer_policy_reads_the_selected_layer(model_and_data):
    model, fc, labels = model_and_data
    model.config.readout_policy = "best_layer"
    model.config.set_readout_layers({"sex": 1, "diagnosis": 0})
    try:
        summary = collect_cross_attention(model, fc, labels, roi_names=ROIS)
    finally:
        model.config.readout_policy = "max"
        model.config.set_readout_layers(None)
    assert summary.readout_layer["sex"] == 1 and summary.readout_layer["diagnosis"] == 0
    assert summary.layer_counts["sex"].tolist() == [0, 10, 0]
    np.testing.assert_allclose(summary.maps("sex", "token"), summary.token_maps[1, 0:2])


def test_tables_and_top_rois(model_and_data):
    model, fc, labels = model_and_data
    summary = collect_cross_attention(model, fc, labels, roi_names=ROIS)
    values = summary.maps("diagnosis", "class")[2]
    top = top_rois(values, ROIS, k=3)
    assert [v for _, v in top] == sorted(values, reverse=True)[:3]
    assert top[0][0] == ROIS[int(np.argmax(values))]
    table = attention_table(summary, "all")
    # categorical: 4 kinds x classes; continuous: token only; x 3 layers x 16 ROIs
    assert len(table) == (4 * 2 + 4 * 3 + 1) * 3 * 16
    row = table[(table.bei == "diagnosis") & (table["class"] == "ad") & (table.kind == "class")
                & (table.is_readout_layer) & (table["rank"] == 1)]
    assert row.roi.item() == top[0][0]
    with pytest.raises(ValueError, match="16 ROI names"):
        collect_cross_attention(model, fc, labels, roi_names=ROIS[:3])


def test_report_writes_figures_and_tables(model_and_data, tmp_path):
    model, fc, labels = model_and_data
    summary = collect_cross_attention(model, fc, labels, roi_names=ROIS)
    coords = np.random.default_rng(0).uniform([-60, -90, -30], [60, 60, 70], size=(16, 3))  # made up
    written = write_attention_report(summary, tmp_path, roi_coords=coords, top_k=5, formats=("png",),
                                     per_layer=False)
    names = {p.split("/")[-1] for p in written["figures"]}
    for expected in ("attention_readout_class.png", "attention_readout_contrast.png", "attention_readout_token.png",
                     "readout_layer_histogram.png", "glass_brain_diagnosis_ad_contrast.png", "glass_brain_age_token.png"):
        assert expected in names
        assert (tmp_path / expected).stat().st_size > 5000
    assert (tmp_path / "attention_maps.csv").is_file() and (tmp_path / "top_rois.csv").is_file()
    figure = plot_attention_heatmap(summary, "contrast")
    assert "contrast" in figure.axes[0].get_title()
    assert save_figure(figure, tmp_path / "extra", ("png", "pdf")) == [str(tmp_path / "extra.png"),
                                                                       str(tmp_path / "extra.pdf")]


def test_read_roi_table(tmp_path):
    rows = "\n".join(f"{name},{i},{-i},{2 * i}" for i, name in enumerate(ROIS))
    (tmp_path / "atlas.csv").write_text("Label,x,y,z\n" + rows + "\n")
    names, coords = read_roi_table(tmp_path / "atlas.csv", None, 16)
    assert names == ROIS and coords.shape == (16, 3) and coords[3].tolist() == [3.0, -3.0, 6.0]
    (tmp_path / "names.txt").write_text("\n".join(ROIS) + "\n")
    np.savetxt(tmp_path / "coords.txt", np.ones((16, 3)))
    names, coords = read_roi_table(tmp_path / "names.txt", tmp_path / "coords.txt", 16)
    assert names == ROIS and (coords == 1).all()
    assert read_roi_table(None, None, 16) == (None, None)
    with pytest.raises(ValueError, match="expected 15 ROI names"):
        read_roi_table(tmp_path / "names.txt", None, 15)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="name/label"):
        read_roi_table(tmp_path / "bad.csv", None, 1)
    assert len(demo_roi_names()) == 116
