import copy
import math

import pytest
import torch
import transformers
from torch.nn import functional as F

from lcm_hf import LcmForBeiPrediction, LcmModel, logits_to_bei_predictions
from lcm_testing import TINY_BEIS, make_tiny_config, random_connectivity

NAN = float("nan")


def labels_tensor(rows):
    return torch.tensor(rows, dtype=torch.float32)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return LcmForBeiPrediction(make_tiny_config(**overrides))


# ----------------------------------------------------------------------------- shapes and outputs
def test_backbone_shapes(tiny_config):
    model = LcmModel(tiny_config).eval()
    out = model(random_connectivity(5, 16), output_attentions=True)
    assert out.last_hidden_state.shape == (5, 6, 32)
    assert out.layer_hidden_states.shape == (5, 3, 6, 32)
    assert out.memory.shape == (5, 16, 32)
    assert out.cross_attentions.shape == (5, 3, 4, 6, 16)
    assert out.attentions.shape == (5, 3, 4, 6, 6)
    torch.testing.assert_close(out.cross_attentions.sum(-1), torch.ones(5, 3, 4, 6))
    assert torch.equal(out.layer_hidden_states[:, -1], out.last_hidden_state)


def test_prediction_output_is_batch_first_with_loss_first(tiny_config):
    model = LcmForBeiPrediction(tiny_config)
    labels = labels_tensor([[0, 2, 30.0], [1, NAN, 41.0]])
    out = model(random_connectivity(2, 16), labels=labels)
    assert list(out.keys())[0] == "loss" and out.loss.dim() == 0
    assert out.logits.shape == (2, 6) and out.layer_logits.shape == (2, 3, 6)
    assert out.readout_layers.shape == (2, 3) and out.readout_layers.dtype == torch.long
    assert out.bei_label_counts.tolist() == [2, 1, 2]
    assert model(random_connectivity(2, 16), return_dict=False)[0].shape == (2, 6)


def test_decoder_layer_matches_independent_float64_reference():
    """One post-norm layer against the DETR equations written out with F.multi_head_attention_forward."""
    model = tiny_model(num_hidden_layers=1, dropout=0.0, attention_dropout=0.0).double().eval()
    connectivity = random_connectivity(3, 16).double()
    out = model.model(connectivity)

    encoder = model.model.fc_encoder
    rows = connectivity.reshape(-1, 16) @ encoder.projection.weight.T + encoder.projection.bias
    rows = F.batch_norm(rows, encoder.norm.running_mean, encoder.norm.running_var, encoder.norm.weight,
                        encoder.norm.bias, training=False, eps=encoder.norm.eps)
    memory = F.leaky_relu(rows, 0.01).reshape(3, 16, 32)
    layer = model.model.layers[0]

    def attention(module, query, key, value):
        in_weight = torch.cat([module.q_proj.weight, module.k_proj.weight, module.v_proj.weight])
        in_bias = torch.cat([module.q_proj.bias, module.k_proj.bias, module.v_proj.bias])
        result, _ = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), 32, 4, in_weight, in_bias,
            None, None, False, 0.0, module.out_proj.weight, module.out_proj.bias, training=False, need_weights=False,
        )
        return result.transpose(0, 1)

    position = model.model.bei_embeddings.weight.expand(3, -1, -1)
    x = torch.zeros_like(position)
    x = layer.norm1(x + attention(layer.self_attn, x + position, x + position, x))
    x = layer.norm2(x + attention(layer.cross_attn, x + position, memory, memory))
    x = layer.norm3(x + layer.feed_forward.linear2(F.relu(layer.feed_forward.linear1(x))))
    torch.testing.assert_close(out.last_hidden_state, x, rtol=1e-10, atol=1e-10)

    expected_logits = model.readout(model.readout_norm(x)).squeeze(-1)
    torch.testing.assert_close(model(connectivity).layer_logits[:, 0], expected_logits)


@pytest.mark.parametrize("norm_position, fc_norm", [("post", "batchnorm"), ("pre", "layernorm")])
def test_sdpa_equals_eager(norm_position, fc_norm):
    torch.manual_seed(0)
    config = make_tiny_config(norm_position=norm_position, fc_norm=fc_norm)
    sdpa = LcmForBeiPrediction._from_config(copy.deepcopy(config), attn_implementation="sdpa").eval()
    eager = LcmForBeiPrediction._from_config(copy.deepcopy(config), attn_implementation="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    connectivity = random_connectivity(4, 16)
    torch.testing.assert_close(sdpa(connectivity).layer_logits, eager(connectivity).layer_logits, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    connectivity, labels = random_connectivity(4, 16), labels_tensor([[0, 1, 20], [1, 2, 30], [0, 0, 40], [1, 1, 50]])
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(seed=1, dropout=0.0, attention_dropout=0.0).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert all(layer.gradient_checkpointing for layer in model.model.layers)
        model(connectivity, labels=labels).loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


# ----------------------------------------------------------------------------- losses
def test_missing_labels_are_ignored():
    model = tiny_model(dropout=0.0, attention_dropout=0.0).eval()
    connectivity = random_connectivity(3, 16)
    full = model(connectivity, labels=labels_tensor([[0, 1, 25.0], [1, NAN, NAN], [NAN, 2, 60.0]]))
    logits = full.logits
    expected = (
        F.cross_entropy(logits[:2, 0:2], torch.tensor([0, 1]))
        + F.cross_entropy(logits[[0, 2], 2:5], torch.tensor([1, 2]))
        + 1e-4 * F.mse_loss(logits[[0, 2], 5], torch.tensor([25.0, 60.0]))
    )
    torch.testing.assert_close(full.loss, expected)
    # A batch without any label for a BEI contributes nothing for it.
    none = model(connectivity, labels=torch.full((3, 3), NAN))
    assert none.loss.item() == 0.0 and none.bei_label_counts.tolist() == [0, 0, 0]


# ----------------------------------------------------------------------------- readout policies
def test_mean_last_and_momentum_readouts():
    model = tiny_model(readout_policy="last").eval()
    out = model(random_connectivity(2, 16))
    z = out.layer_logits
    categorical = slice(0, 5)
    torch.testing.assert_close(out.logits[:, categorical], z[:, -1, categorical])
    torch.testing.assert_close(out.logits[:, 5], z[:, :, 5].mean(1))  # continuous: always the mean
    assert out.readout_layers.tolist() == [[2, 2, -1], [2, 2, -1]]
    # "last" ignores the momentum stage; every other policy averages layers in stage 1.
    torch.testing.assert_close(model(random_connectivity(2, 16), readout_stage="momentum").logits, out.logits)
    model.config.readout_policy = "max"
    momentum = model(random_connectivity(2, 16), readout_stage="momentum")
    torch.testing.assert_close(momentum.logits, z.mean(1))
    assert (momentum.readout_layers == -1).all()


def test_max_readout_inference_takes_each_class_max_over_layers():
    model = tiny_model(readout_policy="max").eval()
    out = model(random_connectivity(3, 16))
    z = out.layer_logits
    torch.testing.assert_close(out.logits[:, :5], z[:, :, :5].max(1).values)
    winner = z[:, :, 0:2].max(1).values.argmax(1)
    expected_layer = z[:, :, 0:2].max(1).indices.gather(1, winner[:, None]).squeeze(1)
    assert out.readout_layers[:, 0].tolist() == expected_layer.tolist()


def test_max_readout_training_uses_true_class_best_layer_per_sample():
    model = tiny_model(readout_policy="max", dropout=0.0, attention_dropout=0.0).train()
    labels = labels_tensor([[1, 0, 30], [0, 2, NAN], [NAN, 1, 50]])
    out = model(random_connectivity(3, 16), labels=labels)
    z = out.layer_logits.detach()
    for sample, (sex, diagnosis) in enumerate([(1, 0), (0, 2), (None, 1)]):
        for bei, (token_slice, label) in enumerate([(slice(0, 2), sex), (slice(2, 5), diagnosis)]):
            per_layer = z[sample, :, token_slice]  # (L, C)
            if label is None:  # unlabelled samples fall back to the inference rule
                torch.testing.assert_close(out.logits[sample, token_slice].detach(), per_layer.max(0).values)
                continue
            layer = int(per_layer[:, label].argmax())
            assert out.readout_layers[sample, bei].item() == layer
            torch.testing.assert_close(out.logits[sample, token_slice].detach(), per_layer[layer])


def test_best_layer_readout_and_early_exit():
    model = tiny_model(readout_policy="best_layer").eval()
    connectivity = random_connectivity(2, 16)
    before = model(connectivity)  # nothing selected yet: mean over layers
    torch.testing.assert_close(before.logits, before.layer_logits.mean(1))

    model.config.set_readout_layers({"sex": 0, "diagnosis": 1})
    full = model(connectivity, labels=torch.full((2, 3), NAN))  # labels: evaluation scores every layer
    assert full.layer_logits.shape[1] == 3 and model.layers_needed() == 3  # age has no layer: all needed
    torch.testing.assert_close(full.logits[:, 0:2], full.layer_logits[:, 0, 0:2])
    torch.testing.assert_close(full.logits[:, 2:5], full.layer_logits[:, 1, 2:5])
    assert full.readout_layers[0].tolist() == [0, 1, -1]

    categorical_only = tiny_model(readout_policy="best_layer", beis=TINY_BEIS[:2]).eval()
    categorical_only.config.set_readout_layers({"sex": 0, "diagnosis": 1})
    assert categorical_only.layers_needed() == 2
    early = categorical_only(connectivity)
    scored = categorical_only(connectivity, labels=torch.full((2, 2), NAN))
    assert early.layer_logits.shape[1] == 2 and scored.layer_logits.shape[1] == 3
    torch.testing.assert_close(early.logits, scored.logits)


def test_readout_layers_survive_save_and_load(tmp_path):
    model = tiny_model(readout_policy="best_layer")
    model.config.set_readout_layers({"sex": 2, "diagnosis": 0})
    model.save_pretrained(tmp_path)
    loaded = LcmForBeiPrediction.from_pretrained(tmp_path)
    assert loaded.config.readout_layers == {"sex": 2, "diagnosis": 0}


# ----------------------------------------------------------------------------- vocabulary growth
def test_add_beis_keeps_pretrained_weights_bit_identical(tmp_path):
    model = tiny_model()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    old_tokens = before["model.bei_embeddings.weight"]
    model.add_beis([
        {"name": "diagnosis", "kind": "categorical", "classes": ["control", "mci", "ad", "pd"]},
        {"name": "task", "kind": "categorical", "classes": ["rest", "motor"]},
    ])
    assert model.config.bei_names == ["sex", "diagnosis", "age", "task"]
    assert model.config.num_bei_tokens == 9
    new_tokens = model.model.bei_embeddings.weight
    assert torch.equal(new_tokens[0:2], old_tokens[0:2])  # sex
    assert torch.equal(new_tokens[2:5], old_tokens[2:5])  # diagnosis' old classes
    assert torch.equal(new_tokens[6], old_tokens[5])  # age moved behind the new diagnosis class
    after = model.state_dict()
    for name, tensor in before.items():
        if name != "model.bei_embeddings.weight":
            assert torch.equal(after[name], tensor), name

    out = model(random_connectivity(2, 16), labels=labels_tensor([[0, 3, 30, 1], [1, NAN, NAN, 0]]))
    assert out.logits.shape == (2, 9) and torch.isfinite(out.loss)
    model.save_pretrained(tmp_path)
    loaded = LcmForBeiPrediction.from_pretrained(tmp_path)
    assert loaded.config.beis == model.config.beis
    assert torch.equal(loaded.model.bei_embeddings.weight, new_tokens)


def test_add_beis_rejects_conflicts():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"BEI 'age' exists as continuous; cannot add it as categorical"):
        model.add_beis([{"name": "age", "kind": "categorical", "classes": ["young", "old"]}])
    with pytest.raises(ValueError, match=r"expected a class list extending \['F', 'M'\], got \['M', 'F', 'X'\]"):
        model.add_beis([{"name": "sex", "kind": "categorical", "classes": ["M", "F", "X"]}])


def test_add_beis_of_an_extended_vocabulary_keeps_na_last_and_each_class_its_token(tmp_path):
    """Issue 17: `model.add_beis(vocab.extend(new).to_config())` raised (the vocabulary put a new class before
    `n/a`, the model after it). One growth rule now: new classes before a trailing `n/a`; every old class keeps
    its trained token (the `n/a` row moves with it); the grown BEI loses its temperature and readout layer."""
    from lcm_hf import BeiVocabulary, LcmConfig

    beis = [{"name": "site", "kind": "categorical", "classes": ["A", "B", "n/a"]},
            {"name": "sex", "kind": "categorical", "classes": ["F", "M"]}, {"name": "age", "kind": "continuous"}]
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(beis=beis, readout_policy="best_layer",
                                                 readout_layers={"site": 1, "sex": 2},
                                                 temperatures={"site": 2.0, "sex": 1.5}))
    old_tokens = model.model.bei_embeddings.weight.detach().clone()
    vocab = BeiVocabulary(beis)
    grown = vocab.extend([{"name": "site", "kind": "categorical", "classes": ["A", "B", "C"]},
                          {"name": "task", "kind": "categorical", "classes": ["rest", "motor"]}])
    assert grown["site"]["classes"] == ["A", "B", "C", "n/a"]
    model.add_beis(grown.to_config())
    assert model.config.beis == grown.to_config()
    assert model.config.bei_names == ["site", "sex", "age", "task"]
    new_tokens = model.model.bei_embeddings.weight.detach()
    old_names, new_names = vocab.token_names(), grown.token_names()
    assert new_names == ["site=A", "site=B", "site=C", "site=n/a", "sex=F", "sex=M", "age", "task=rest",
                         "task=motor"]
    for index, name in enumerate(new_names):  # each class keeps its trained token, by name
        if name in old_names:
            assert torch.equal(new_tokens[index], old_tokens[old_names.index(name)]), name
    assert grown.token_mapping(vocab) == [0, 1, -1, 2, 3, 4, 5, -1, -1]
    assert model.config.temperatures == {"sex": 1.5} and model.config.readout_layers == {"sex": 2}
    # the grown list given again changes nothing; growing a config-only list the old way ([A, B, n/a, C]) too
    model.add_beis(grown.to_config())
    model.add_beis([{"name": "site", "kind": "categorical", "classes": ["A", "B", "n/a", "C"]}])
    assert model.config.beis == grown.to_config() and torch.equal(model.model.bei_embeddings.weight, new_tokens)
    with torch.no_grad():
        out = model(random_connectivity(2, 16), labels=labels_tensor([[2, 0, 30, 1], [3, NAN, NAN, 0]]))
    assert out.logits.shape == (2, 9) and torch.isfinite(out.loss)
    model.save_pretrained(tmp_path)
    assert LcmConfig.from_pretrained(tmp_path).beis == grown.to_config()
    assert not hasattr(LcmConfig, "add_beis")  # the public method that changed beis without resizing is gone


# ----------------------------------------------------------------------------- HF integration
def test_auto_classes_resolve_lcm(tmp_path):
    model = tiny_model().eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    backbone = transformers.AutoModel.from_pretrained(tmp_path)
    head = transformers.AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(backbone) is LcmModel and type(head) is LcmForBeiPrediction
    for name, tensor in model.state_dict().items():
        assert torch.equal(head.state_dict()[name], tensor), name
    connectivity = random_connectivity(2, 16)
    assert torch.equal(head(connectivity).logits, model(connectivity).logits)


def test_logits_to_bei_predictions_names_classes():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 3.0, 41.5]])
    (prediction,) = logits_to_bei_predictions(logits, TINY_BEIS)
    assert prediction["sex"]["label"] == "F"
    assert math.isclose(prediction["sex"]["score"], 1 / (1 + math.exp(-2)), rel_tol=1e-6)
    assert prediction["diagnosis"]["label"] == "ad"
    assert math.isclose(sum(prediction["diagnosis"]["scores"].values()), 1.0, rel_tol=1e-6)
    assert prediction["age"] == {"value": 41.5}
    with pytest.raises(ValueError, match=r"expected `logits` of shape \(B, 6\), got \(1, 5\)"):
        logits_to_bei_predictions(logits[:, :5], TINY_BEIS)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "connectivity, error, message",
    [
        (random_connectivity(1, 16)[0], ValueError, r"expected `connectivity` of shape \(B, 16, 16\), got \(16, 16\) \(rank 2\) \(add a batch dimension"),
        (random_connectivity(2, 12), ValueError, r"expected `connectivity` of shape \(B, 16, 16\), got \(2, 12, 12\)"),
        (torch.zeros(2, 16, 15), ValueError, r"expected `connectivity` of shape \(B, 16, 16\), got \(2, 16, 15\)"),
        (torch.zeros(2, 16, 16, dtype=torch.long), TypeError, r"expected `connectivity` of a floating-point dtype, got torch.int64"),
        (random_connectivity(2, 16).numpy(), TypeError, r"expected `connectivity` to be a torch.Tensor, got ndarray"),
        (torch.zeros(0, 16, 16), ValueError, r"expected at least one `connectivity` matrix \(B >= 1\), got an empty batch of shape \(0, 16, 16\)"),
        (torch.zeros(2, 16, 16, dtype=torch.complex64), TypeError, r"expected real `connectivity`, got complex values \(torch.complex64\)"),
    ],
)
def test_bad_connectivity_is_rejected_with_a_clear_message(connectivity, error, message):
    model = tiny_model()
    with pytest.raises(error, match=message):
        model(connectivity)


@pytest.mark.parametrize(
    "connectivity, message",
    [
        (random_connectivity(2, 16).index_put((torch.tensor([0]), torch.tensor([1]), torch.tensor([2])), torch.tensor(NAN)), r"expected finite `connectivity`, got NaN or inf values for subject 's0'"),
        (random_connectivity(2, 16).index_put((torch.tensor([1]), torch.tensor([1]), torch.tensor([2])), torch.tensor(math.inf)), r"expected finite `connectivity`, got NaN or inf values for subject 's1'"),
    ],
)
def test_non_finite_connectivity_is_rejected_by_the_collator(connectivity, message):
    """Values are checked once per batch where it is collated (no host sync in the training step)."""
    from lcm_hf.data import LcmDataCollator

    rows = [{"connectivity": fc.numpy(), "subject_id": f"s{i}"} for i, fc in enumerate(connectivity)]
    with pytest.raises(ValueError, match=message):
        LcmDataCollator()(rows)


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (torch.zeros(2, 2), ValueError, r"expected `labels` of shape \(B, K\) = \(2, 3\) \(one column per BEI: \['sex', 'diagnosis', 'age'\]\), got \(2, 2\)"),
        (torch.zeros(3, 3), ValueError, r"expected `labels` of shape \(B, K\) = \(2, 3\)"),
        (torch.zeros(2, 3, dtype=torch.long), TypeError, r"expected `labels` of a floating-point dtype \(NaN marks missing\), got torch.int64"),
        ([[0, 0, 1]], TypeError, r"expected `labels` to be a torch.Tensor, got list"),
    ],
)
def test_bad_labels_are_rejected_with_a_clear_message(labels, error, message):
    model = tiny_model()
    with pytest.raises(error, match=message):
        model(random_connectivity(2, 16), labels=labels)


@pytest.mark.parametrize(
    "labels, message",
    [
        (labels_tensor([[0, 3, 1], [1, 0, 2]]), r"expected `labels` for BEI 'diagnosis' to be class indices in \[0, 2\] \(\['control', 'mci', 'ad'\]\) or NaN, got 3.0"),
        (labels_tensor([[-1, 0, 1], [1, 0, 2]]), r"expected `labels` for BEI 'sex' to be class indices in \[0, 1\]"),
        (labels_tensor([[0.5, 0, 1], [1, 0, 2]]), r"for BEI 'sex' to be class indices in \[0, 1\] \(\['F', 'M'\]\) or NaN, got 0.5"),
        (labels_tensor([[0, 0, math.inf], [1, 0, 2]]), r"expected finite `labels` for BEI 'age' \(NaN for missing\), got inf"),
    ],
)
def test_bad_label_values_are_rejected_by_the_collator(labels, message):
    """Label values are checked once per batch by `LcmDataCollator(beis=...)`, not in the training step."""
    from lcm_hf.data import LcmDataCollator

    model = tiny_model()
    rows = [{"connectivity": fc.numpy(), "labels": row.numpy()} for fc, row in zip(random_connectivity(2, 16), labels)]
    with pytest.raises(ValueError, match=message):
        LcmDataCollator(beis=model.config.beis)(rows)


def test_bad_readout_stage_and_empty_vocabulary():
    with pytest.raises(ValueError, match=r"expected `readout_stage` in \['momentum', 'adaptive'\], got 'warmup'"):
        tiny_model()(random_connectivity(2, 16), readout_stage="warmup")
    with pytest.raises(ValueError, match=r"`config.beis` is empty"):
        LcmModel(make_tiny_config(beis=None))(random_connectivity(2, 16))


def test_initialisation_follows_the_reference_code():
    """PyTorch defaults as in the reference (nn.MultiheadAttention / nn.Linear / nn.Embedding)."""
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config(hidden_size=64, num_rois=16))
    bound = math.sqrt(6.0 / (4 * 64))  # Xavier over the packed (3E, E) in-projection
    attention = model.model.layers[0].cross_attn
    for projection in (attention.q_proj, attention.k_proj, attention.v_proj):
        assert projection.weight.abs().max() <= bound and projection.weight.abs().max() > 0.9 * bound
        assert (projection.bias == 0).all()
    assert (attention.out_proj.bias == 0).all()
    linear1 = model.model.layers[0].feed_forward.linear1
    assert linear1.weight.abs().max() <= 1 / math.sqrt(64) and linear1.bias.abs().max() > 0
    assert abs(model.model.bei_embeddings.weight.std().item() - 1.0) < 0.25
    assert (model.readout_norm.weight == 1).all() and (model.model.fc_encoder.norm.running_var == 1).all()


def test_standardised_continuous_bei_reports_values_and_trains_at_unit_scale():
    beis = [TINY_BEIS[0], {"name": "age", "kind": "continuous", "center": 40.0, "scale": 12.0}]
    model = tiny_model(beis=beis, dropout=0.0, attention_dropout=0.0).eval()
    assert model.config.beis[1]["loss_weight"] == 1.0  # standardised: unit-scale targets
    connectivity, labels = random_connectivity(3, 16), labels_tensor([[0, 52.0], [1, NAN], [NAN, 31.0]])
    out = model(connectivity, labels=labels)
    raw = model.readout(model.readout_norm(model.model(connectivity).layer_hidden_states)).squeeze(-1)
    torch.testing.assert_close(out.layer_logits[:, :, 2], raw[:, :, 2] * 12.0 + 40.0)
    torch.testing.assert_close(out.layer_logits[:, :, :2], raw[:, :, :2])  # categorical tokens untouched
    standardised_error = (out.logits[[0, 2], 2] - torch.tensor([52.0, 31.0])) / 12.0
    expected = F.cross_entropy(out.logits[:2, :2], torch.tensor([0, 1])) + standardised_error.square().mean()
    torch.testing.assert_close(out.loss, expected)
