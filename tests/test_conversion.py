"""Reference-checkpoint conversion: state dicts with the reference names/shapes -> LcmForBeiPrediction,
checked against an independent reference forward pass (nn.MultiheadAttention, explicit post-norm maths)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lcm_hf import LcmForBeiPrediction
from lcm_hf.conversion import (
    CheckpointConversionError,
    convert_reference_checkpoint,
    load_reference_state_dict,
)

REPO = Path(__file__).resolve().parents[1]
N, E, FFN, LAYERS, HEADS = 12, 32, 24, 2, 4
DATASET_BEIS = [{"name": "diagnosis", "kind": "categorical", "classes": ["control", "mci", "ad"]}]
FINETUNE_BEIS = [{"name": "autism", "kind": "categorical", "classes": ["no", "yes"]}]
SEX_AGE = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "age", "kind": "continuous"},
]


def make_reference_state_dicts(num_dataset_tokens=3, num_finetune_tokens=0, seed=0):
    """Random tensors under exactly the names and shapes the reference code saves."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale

    backbone = {
        "lin.0.weight": r(E, N),
        "lin.0.bias": r(E),
        "lin.1.weight": 1 + r(E, scale=0.1),
        "lin.1.bias": r(E),
        "lin.1.running_mean": r(E),
        "lin.1.running_var": 0.5 + torch.rand(E, generator=g),
        "lin.1.num_batches_tracked": torch.tensor(1234),
    }
    head = {"object_query.weight": r(num_dataset_tokens + 3, E, scale=1.0)}
    if num_finetune_tokens:
        head["finetune_query.weight"] = r(num_finetune_tokens, E, scale=1.0)
    for i in range(LAYERS):
        p = f"decoder.layers.{i}."
        for attn in ("self_attn", "multihead_attn"):
            head[p + attn + ".in_proj_weight"] = r(3 * E, E)
            head[p + attn + ".in_proj_bias"] = r(3 * E, scale=0.1)
            head[p + attn + ".out_proj.weight"] = r(E, E)
            head[p + attn + ".out_proj.bias"] = r(E, scale=0.1)
        head[p + "linear1.weight"], head[p + "linear1.bias"] = r(FFN, E), r(FFN, scale=0.1)
        head[p + "linear2.weight"], head[p + "linear2.bias"] = r(E, FFN), r(E, scale=0.1)
        for k in (1, 2, 3):
            head[p + f"norm{k}.weight"], head[p + f"norm{k}.bias"] = 1 + r(E, scale=0.1), r(E, scale=0.1)
    head["decoder.norm.weight"], head["decoder.norm.bias"] = 1 + r(E, scale=0.1), r(E, scale=0.1)
    head["class_embed.weight"], head["class_embed.bias"] = r(1, E), r(1)
    head["sex_embed.weight"], head["sex_embed.bias"] = r(2, E), r(2)  # saved, unused
    head["age_embed.weight"], head["age_embed.bias"] = r(1, E), r(1)
    return backbone, head


def reference_forward(backbone, head, connectivity):
    """The reference model written independently: seq-first nn.MultiheadAttention, explicit post-norm.
    Returns per-layer logits (B, L, P) and cross-attention weights (B, L, H, P, N)."""
    dtype = connectivity.dtype
    b = {k: v.to(dtype) if v.is_floating_point() else v for k, v in backbone.items()}
    h = {k: v.to(dtype) for k, v in head.items()}
    batch = connectivity.shape[0]
    rows = connectivity.reshape(batch * N, N) @ b["lin.0.weight"].T + b["lin.0.bias"]
    rows = F.batch_norm(rows, b["lin.1.running_mean"], b["lin.1.running_var"], b["lin.1.weight"], b["lin.1.bias"],
                        training=False, eps=1e-5)
    memory = F.leaky_relu(rows, 0.01).reshape(batch, N, E).transpose(0, 1)  # (N, B, E)
    queries = h["object_query.weight"]
    if "finetune_query.weight" in h:
        queries = torch.cat([queries[:-3], h["finetune_query.weight"], queries[-3:]])
    pos = queries.unsqueeze(1).repeat(1, batch, 1)  # (P, B, E)
    tgt = torch.zeros_like(pos)

    def mha(prefix):
        m = nn.MultiheadAttention(E, HEADS, dropout=0.0).to(dtype).eval()
        m.load_state_dict({k[len(prefix):]: v for k, v in h.items() if k.startswith(prefix)})
        return m

    def ln(x, prefix):
        return F.layer_norm(x, (E,), h[prefix + ".weight"], h[prefix + ".bias"], eps=1e-5)

    outputs, cross = [], []
    for i in range(LAYERS):
        p = f"decoder.layers.{i}."
        q = k = tgt + pos
        tgt = ln(tgt + mha(p + "self_attn.")(q, k, value=tgt)[0], p + "norm1")
        update, weights = mha(p + "multihead_attn.")(tgt + pos, memory, memory, average_attn_weights=False)
        tgt = ln(tgt + update, p + "norm2")
        ffn = F.linear(F.relu(F.linear(tgt, h[p + "linear1.weight"], h[p + "linear1.bias"])),
                       h[p + "linear2.weight"], h[p + "linear2.bias"])
        tgt = ln(tgt + ffn, p + "norm3")
        outputs.append(ln(tgt, "decoder.norm"))
        cross.append(weights)  # (B, H, P, N)
    hs = torch.stack(outputs)  # (L, P, B, E)
    logits = (hs @ h["class_embed.weight"].T + h["class_embed.bias"]).squeeze(-1)  # (L, P, B)
    return logits.permute(2, 0, 1), torch.stack(cross, dim=1)


def connectivity_batch(batch=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(7)
    series = torch.randn(batch, 30, N, generator=g, dtype=dtype)
    series = (series - series.mean(1, keepdim=True)) / series.std(1, keepdim=True)
    return series.transpose(1, 2) @ series / 29


@pytest.mark.parametrize("finetuned", [False, True])
def test_converted_model_reproduces_reference_forward(finetuned):
    backbone, head = make_reference_state_dicts(num_finetune_tokens=2 if finetuned else 0)
    beis = DATASET_BEIS + (FINETUNE_BEIS if finetuned else []) + SEX_AGE
    model = convert_reference_checkpoint(backbone, head, beis, num_attention_heads=HEADS)
    assert isinstance(model, LcmForBeiPrediction) and not model.training
    config = model.config
    assert (config.num_rois, config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (N, E, LAYERS, FFN)
    assert config.num_bei_tokens == (8 if finetuned else 6)
    assert model.model.fc_encoder.norm.num_batches_tracked.item() == 1234

    fc = connectivity_batch()
    model = model.double()
    with torch.no_grad():
        out = model(fc, output_attentions=True)
        ref_logits, ref_cross = reference_forward(backbone, head, fc)
    assert out.layer_logits.shape == ref_logits.shape
    torch.testing.assert_close(out.layer_logits, ref_logits, atol=1e-6, rtol=1e-5)  # eager softmax runs in float32
    torch.testing.assert_close(out.cross_attentions, ref_cross, atol=1e-6, rtol=1e-5)  # eager softmax runs in float32
    # the default "max" policy at inference: each class logit's max over layers; age: mean
    torch.testing.assert_close(out.logits[:, :-1], ref_logits[:, :, :-1].max(dim=1).values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.logits[:, -1], ref_logits[:, :, -1].mean(dim=1), atol=1e-6, rtol=1e-5)
    # finetune tokens sit before the last three (sex, sex, age)
    tokens = model.model.bei_embeddings.weight.float()
    if finetuned:
        torch.testing.assert_close(tokens[3:5], head["finetune_query.weight"])
    torch.testing.assert_close(tokens[-3:], head["object_query.weight"][-3:])


def test_shape_mismatches_are_refused_with_a_clear_message():
    backbone, head = make_reference_state_dicts()
    with pytest.raises(CheckpointConversionError, match=r"vocabulary lists 7 BEI tokens .* head has 6"):
        convert_reference_checkpoint(backbone, head, DATASET_BEIS + FINETUNE_BEIS[:0] + [
            {"name": "diagnosis2", "kind": "continuous"}] + SEX_AGE, num_attention_heads=HEADS)
    bad = dict(head)
    bad["decoder.layers.1.linear2.weight"] = torch.zeros(E, FFN + 1)
    with pytest.raises(CheckpointConversionError, match=r"decoder\.layers\.1\.linear2\.weight.*expected \(32, 24\), got \(32, 25\)"):
        convert_reference_checkpoint(backbone, bad, DATASET_BEIS + SEX_AGE, num_attention_heads=HEADS)
    bad = dict(head)
    bad["decoder.layers.0.self_attn.in_proj_weight"] = torch.zeros(2 * E, E)
    with pytest.raises(CheckpointConversionError, match=r"in_proj_weight.*expected \(96, 32\)"):
        convert_reference_checkpoint(backbone, bad, DATASET_BEIS + SEX_AGE, num_attention_heads=HEADS)
    bad = dict(head)
    del bad["decoder.norm.weight"]
    with pytest.raises(CheckpointConversionError, match="no `decoder.norm.weight`"):
        convert_reference_checkpoint(backbone, bad, DATASET_BEIS + SEX_AGE, num_attention_heads=HEADS)
    bad = dict(head)
    bad["decoder.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointConversionError, match="unexpected keys"):
        convert_reference_checkpoint(backbone, bad, DATASET_BEIS + SEX_AGE, num_attention_heads=HEADS)
    convert_reference_checkpoint(backbone, bad, DATASET_BEIS + SEX_AGE, num_attention_heads=HEADS, strict=False)


def test_cli_converts_torch_files_to_a_pretrained_folder(tmp_path):
    backbone, head = make_reference_state_dicts(num_finetune_tokens=2)
    wrapped_head = {"module." + k: v for k, v in head.items()}  # DataParallel prefixes are stripped
    torch.save(backbone, tmp_path / "bb.pt")
    torch.save(wrapped_head, tmp_path / "head.pt")
    beis = DATASET_BEIS + FINETUNE_BEIS + SEX_AGE
    (tmp_path / "beis.json").write_text(json.dumps(beis))
    assert load_reference_state_dict(tmp_path / "head.pt").keys() == head.keys()
    result = subprocess.run(
        [sys.executable, str(REPO / "modeling" / "convert_original_checkpoint.py"), "--backbone",
         str(tmp_path / "bb.pt"), "--head", str(tmp_path / "head.pt"), "--beis", str(tmp_path / "beis.json"),
         "--output", str(tmp_path / "out"), "--num-heads", str(HEADS)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    model = LcmForBeiPrediction.from_pretrained(tmp_path / "out").eval().double()
    assert [b["name"] for b in model.config.beis] == ["diagnosis", "autism", "sex", "age"]
    fc = connectivity_batch()
    with torch.no_grad():
        ref_logits, _ = reference_forward(backbone, head, fc)
        torch.testing.assert_close(model(fc).layer_logits, ref_logits, atol=1e-6, rtol=1e-5)

    (tmp_path / "bad.json").write_text(json.dumps(DATASET_BEIS + SEX_AGE))
    result = subprocess.run(
        [sys.executable, str(REPO / "modeling" / "convert_original_checkpoint.py"), "--backbone",
         str(tmp_path / "bb.pt"), "--head", str(tmp_path / "head.pt"), "--beis", str(tmp_path / "bad.json"),
         "--output", str(tmp_path / "out2"), "--num-heads", str(HEADS)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "head has 8 query tokens" in result.stderr
