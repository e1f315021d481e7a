"""LoRA (peft) on the attention projections: apply, train, save the adapter, reload, merge."""

import pytest
import torch

from lcm_hf import LcmForBeiPrediction
from lcm_testing import make_tiny_config, random_connectivity

pytest.importorskip("peft")
from lcm_hf.training.adapters import (  # noqa: E402
    apply_lora,
    load_lora_adapter,
    merge_lora,
    save_lora_adapter,
    trainable_parameters,
)

NEW_BEI = [{"name": "parkinson", "kind": "categorical", "classes": ["PD", "control"]}]


def pretrained(tmp_path):
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(dropout=0.0, attention_dropout=0.0, temperatures={"sex": 2.0}))
    model.save_pretrained(tmp_path / "pretrained")
    return model


def test_lora_trains_only_adapters_and_round_trips(tmp_path):
    model = pretrained(tmp_path)
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if "q_proj" in k or "linear1" in k}
    model.add_beis(NEW_BEI)
    peft_model = apply_lora(model, r=4)
    trainable, total = trainable_parameters(peft_model)
    assert 0 < trainable < total / 2
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("cross_attn.out_proj.lora_B" in n for n in names)
    assert all(("lora_" in n) or ("modules_to_save" in n) for n in names), names
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert any(f"self_attn.{proj}.lora_A" in n for n in names)

    fc = random_connectivity(16, 16, seed=3)
    labels = torch.tensor([[i % 2, i % 3, 30.0 + i, (i + 1) % 2] for i in range(16)], dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    first = None
    for _ in range(15):
        loss = peft_model(connectivity=fc, labels=labels).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first
    for key, value in frozen_before.items():  # base weights untouched
        assert torch.equal(peft_model.get_base_model().state_dict()[key.replace("q_proj.", "q_proj.base_layer.")]
                           if "q_proj" in key else peft_model.get_base_model().state_dict()[key], value)

    peft_model.eval()
    test_fc = random_connectivity(5, 16, seed=9)
    with torch.no_grad():
        expected = peft_model(connectivity=test_fc).logits
    peft_model.get_base_model().config.set_temperatures({"parkinson": 1.7})  # as calibrating the finetune does
    files = save_lora_adapter(peft_model, tmp_path / "adapter")
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files

    base = LcmForBeiPrediction.from_pretrained(tmp_path / "pretrained")
    assert base.config.num_bei_tokens == 6
    reloaded = load_lora_adapter(base, tmp_path / "adapter")
    assert reloaded.get_base_model().config.bei_names == ["sex", "diagnosis", "age", "parkinson"]
    assert reloaded.get_base_model().config.temperatures == {"parkinson": 1.7}  # the finetune's, not the base's
    with torch.no_grad():
        torch.testing.assert_close(reloaded(connectivity=test_fc).logits, expected)
        merged = merge_lora(reloaded)
        assert isinstance(merged, LcmForBeiPrediction)
        assert not any("lora" in k for k in merged.state_dict())
        torch.testing.assert_close(merged(test_fc).logits, expected, atol=1e-5, rtol=1e-5)


def test_lora_rejects_bad_arguments(tmp_path):
    model = pretrained(tmp_path)
    with pytest.raises(ValueError, match="target_modules"):
        apply_lora(model, target_modules=["linear1"])
    with pytest.raises(ValueError, match="rank"):
        apply_lora(model, r=0)
    with pytest.raises(TypeError, match="LcmForBeiPrediction"):
        apply_lora(torch.nn.Linear(2, 2))
