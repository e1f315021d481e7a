"""A LoRA finetune saved as a merged plain model loads with `lcm-hf predict` / the pipeline, without peft."""

import json

import numpy as np
import pytest
import torch

from lcm_hf import LcmForBeiPrediction, LcmProcessor
from lcm_hf.cli import main
from lcm_testing import make_tiny_config, random_connectivity

pytest.importorskip("peft")
from lcm_hf.training.adapters import apply_lora, save_merged_lora  # noqa: E402


def test_merged_lora_model_predicts_like_the_adapter(tmp_path, capsys):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(dropout=0.0, attention_dropout=0.0)).eval()
    peft_model = apply_lora(model, r=4)
    with torch.no_grad():  # move the adapter off its zero initialisation, so that merging matters
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.2)
    peft_model.eval()
    fc = random_connectivity(4, 16, seed=3)
    with torch.no_grad():
        expected = peft_model(connectivity=fc).logits
    processor = LcmProcessor(vocabulary=model.config.beis, num_rois=16)
    folder = save_merged_lora(peft_model, tmp_path / "merged", processor)
    assert any(hasattr(m, "lora_A") for m in peft_model.modules())  # the trained adapter model is left as it is
    merged = LcmForBeiPrediction.from_pretrained(folder).eval()
    assert not any(hasattr(m, "lora_A") for m in merged.modules())
    with torch.no_grad():
        torch.testing.assert_close(merged(connectivity=fc).logits, expected, rtol=1e-4, atol=1e-5)
    np.save(tmp_path / "s.npy", np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32))
    assert main(["predict", "--model", folder, "--timeseries", str(tmp_path / "s.npy"), "--json", "--device", "cpu"]) == 0
    assert set(json.loads(capsys.readouterr().out)["predictions"]) == set(model.config.bei_names)
