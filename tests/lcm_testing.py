"""Tiny LCM configurations and inputs for tests (ModelTester style)."""

import torch

TINY_BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "diagnosis", "kind": "categorical", "classes": ["control", "mci", "ad"]},
    {"name": "age", "kind": "continuous"},
]


def make_tiny_config(**overrides):
    """A 3-layer, 16-ROI, width-32 LCM with three BEIs (P = 6 tokens, K = 3)."""
    from lcm_hf import LcmConfig

    settings = dict(
        num_rois=16,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        beis=TINY_BEIS,
    )
    settings.update(overrides)
    return LcmConfig(**settings)


def random_connectivity(batch_size, num_rois, seed=0):
    """Symmetric (B, N, N) correlation-like matrices with unit diagonal."""
    generator = torch.Generator().manual_seed(seed)
    series = torch.randn(batch_size, 40, num_rois, generator=generator)
    series = (series - series.mean(1, keepdim=True)) / series.std(1, keepdim=True)
    return series.transpose(1, 2) @ series / (series.shape[1] - 1)
