"""The fast attention paths of `LcmAttention` (fused q/k and k/v projections, cross-attention with the
key/value projections absorbed into the queries) compute the same function as the plain path."""

import copy

import torch

from lcm_hf import LcmForBeiPrediction
from lcm_hf.layers_lcm import LcmAttention, absorption_pays
from lcm_testing import make_tiny_config, random_connectivity


def _pair(**overrides):
    """The same weights with sdpa (fast paths) and eager (plain projections), float64, no dropout."""
    torch.manual_seed(0)
    config = make_tiny_config(dropout=0.0, attention_dropout=0.0, **overrides)
    fast = LcmForBeiPrediction._from_config(copy.deepcopy(config), attn_implementation="sdpa").double()
    plain = LcmForBeiPrediction._from_config(copy.deepcopy(config), attn_implementation="eager").double()
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def test_tiny_config_takes_the_absorbed_path_and_large_vocabularies_do_not():
    assert absorption_pays(4, 32, 6, 16)  # 4 heads, E=32, P=6 tokens, N=16 ROIs: the tiny config
    assert not absorption_pays(4, 32, 200, 16)


def test_fast_paths_give_the_plain_outputs_and_gradients_in_float64():
    fast, plain = _pair()
    connectivity = random_connectivity(4, 16).double()
    labels = torch.tensor([[0, 1, 20], [1, 2, 30], [0, 0, 40], [1, 1, 50]], dtype=torch.float64)
    outputs = []
    for model in (fast, plain):
        model.train()
        out = model(connectivity, labels=labels)
        out.loss.backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0].layer_logits, outputs[1].layer_logits, rtol=1e-10, atol=1e-12)
    plain_grads = dict(plain.named_parameters())
    for name, parameter in fast.named_parameters():
        # every parameter gets a gradient, as on the plain path (k_proj.bias's vanishes: softmax shift)
        assert (parameter.grad is None) == (plain_grads[name].grad is None), name
        if parameter.grad is not None:
            torch.testing.assert_close(parameter.grad, plain_grads[name].grad, rtol=1e-8, atol=1e-12, msg=name)


def test_absorbed_path_with_attention_dropout_keeps_the_value_bias_scaled_by_the_kept_mass():
    """With dropout the kept weights no longer sum to 1; the value bias must follow them."""
    torch.manual_seed(0)
    attention = LcmAttention(make_tiny_config(attention_dropout=0.5)).double().train()
    with torch.no_grad():
        attention.v_proj.bias.uniform_(-1, 1)
    query, memory = torch.randn(3, 6, 32, dtype=torch.float64), torch.randn(3, 16, 32, dtype=torch.float64)
    torch.manual_seed(1)
    fast, _ = attention(query, memory, memory)
    # Same dropout mask by hand: softmax weights of the plain computation, the same RNG draw.
    torch.manual_seed(1)
    q = attention.q_proj(query).view(3, 6, 4, 8).transpose(1, 2) * attention.scaling
    k = attention.k_proj(memory).view(3, 16, 4, 8).transpose(1, 2)
    v = attention.v_proj(memory).view(3, 16, 4, 8).transpose(1, 2)
    weights = torch.nn.functional.dropout((q @ k.transpose(2, 3)).softmax(-1), p=0.5, training=True)
    expected = attention.out_proj((weights @ v).transpose(1, 2).reshape(3, 6, 32))
    torch.testing.assert_close(fast, expected, rtol=1e-10, atol=1e-12)


def test_hooked_or_wrapped_projections_take_the_plain_path():
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config()).eval()
    calls = []
    for layer in model.model.layers:
        layer.cross_attn.k_proj.register_forward_hook(lambda module, args, output: calls.append(output.shape))
    model(random_connectivity(2, 16))
    assert calls == [torch.Size([2, 16, 32])] * 3


def test_bf16_autocast_stays_close_to_float32():
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config()).eval()
    connectivity = random_connectivity(4, 16)
    with torch.no_grad():
        reference = model(connectivity).layer_logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(connectivity).layer_logits
    torch.testing.assert_close(low.float(), reference, rtol=0.05, atol=0.05)
