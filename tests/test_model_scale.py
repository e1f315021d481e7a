"""lcm_hf.analysis.scaling: preset parameter table, FLOP formula, matched MLP baseline, the study; and its CLI."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lcm_hf import LcmForBeiPrediction
from lcm_hf.analysis import scaling
from lcm_testing import make_tiny_config, random_connectivity

SCRIPT = Path(__file__).resolve().parents[1] / "modeling" / "model_scale.py"


def test_preset_parameters_within_half_a_percent_of_the_reference():
    table = scaling.preset_table()
    assert list(table.preset) == ["small", "base", "mid", "big"]
    assert list(table.layers) == [4, 8, 20, 32]
    assert (table.diff_pct.abs() < 0.5).all(), table
    assert (table.fwd_GFLOPs_per_sample.diff().iloc[1:] > 0).all()


def test_flop_formula_matches_torch_flop_counter():
    config = make_tiny_config(num_rois=12, hidden_size=24, num_hidden_layers=2, intermediate_size=40)
    model = LcmForBeiPrediction(config).eval()
    fc = random_connectivity(3, 12)  # made outside the counter: its own matmul must not be counted
    counter = FlopCounterMode(display=False)
    with counter:
        model(fc, output_attentions=True)  # eager attention: every matmul is counted
    assert counter.get_total_flops() == 3 * scaling.forward_flops(config)
    small = model.config.__class__.from_preset("small", beis=scaling.TABLE_BEIS)
    assert scaling.count_parameters(small) == pytest.approx(147.19e6, rel=5e-3)


def test_matched_mlp_width():
    for target, depth in ((5_000, 1), (30_000, 2), (350_000, 3)):
        width = scaling.matched_mlp_width(target, 116, 12, depth)
        params = scaling.mlp_parameters(116, 12, width, depth)
        assert abs(params - target) <= abs(scaling.mlp_parameters(116, 12, width + 1, depth) - target)
        assert abs(params - target) <= abs(scaling.mlp_parameters(116, 12, max(1, width - 1), depth) - target)
        mlp = scaling.MlpHead(116, 12, width, depth)
        assert sum(p.numel() for p in mlp.parameters()) == params


def test_scaling_study_on_small_data(tmp_path):
    config = make_tiny_config()
    fc = random_connectivity(24, 16, seed=1)
    labels = torch.tensor([[i % 2, i % 3, 30.0 + i] for i in range(24)], dtype=torch.float32)
    table, curves = scaling.scaling_study(fc, labels, config.beis, [(8, 1), (16, 2)], steps=4, batch_size=8,
                                        log=lambda *_: None)
    assert list(table.model) == ["lcm_decoder", "mlp_head"] * 2
    assert all(len(c) == 4 for c in curves.values())
    decoders, mlps = table[table.model == "lcm_decoder"], table[table.model == "mlp_head"]
    ratios = mlps.params.to_numpy() / decoders.params.to_numpy()
    assert ((ratios > 0.5) & (ratios < 1.5)).all()
    scaling.plot_scaling(table, curves, tmp_path / "scaling.png", "test")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


@pytest.mark.slow
def test_quick_run_writes_table_and_plot(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output-dir", str(tmp_path)],
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "small" in out and "147.19" in out
    for name in ("scaling.png", "scaling.csv", "scaling.md", "presets.csv"):
        assert (tmp_path / name).is_file()
