"""`torch.compile` traces `LcmForBeiPrediction` without graph breaks, for inference and for the training loss with
missing labels (what `_can_compile_fullgraph = True` declares)."""

import torch

from lcm_hf import LcmForBeiPrediction
from lcm_testing import make_tiny_config, random_connectivity


def test_inference_and_training_trace_into_one_graph():
    import torch._dynamo as dynamo

    assert LcmForBeiPrediction._can_compile_fullgraph
    torch.manual_seed(0)
    model = LcmForBeiPrediction(make_tiny_config())
    connectivity = random_connectivity(4, 16)
    labels = torch.tensor([[0, 1, 20], [1, 2, 30], [0, float("nan"), 40], [float("nan"), 1, float("nan")]])
    model.eval()
    inference = dynamo.explain(lambda c: model(connectivity=c).logits)(connectivity)
    model.train()
    training = dynamo.explain(lambda c, y: model(connectivity=c, labels=y).loss)(connectivity, labels)
    dynamo.reset()
    assert (inference.graph_count, inference.graph_break_count) == (1, 0)
    assert (training.graph_count, training.graph_break_count) == (1, 0), training.break_reasons


def test_masked_loss_equals_the_loss_over_labelled_samples_only():
    from torch.nn import functional as F

    from lcm_hf.readout_lcm import bei_loss_sums

    beis = [{"name": "dx", "kind": "categorical", "classes": ["a", "b", "c"]},
            {"name": "age", "kind": "continuous", "scale": 2.0}]
    logits = torch.randn(5, 4)
    labels = torch.tensor([[0, 1.0], [2, float("nan")], [float("nan"), 3.0], [1, 0.5], [float("nan"), float("nan")]])
    sums, counts = bei_loss_sums(logits, labels, beis)
    known = ~torch.isnan(labels[:, 0])
    expected_ce = F.cross_entropy(logits[known, :3], labels[known, 0].long(), reduction="sum")
    known_age = ~torch.isnan(labels[:, 1])
    expected_se = (((logits[known_age, 3] - labels[known_age, 1]) / 2.0) ** 2).sum()
    torch.testing.assert_close(sums, torch.stack([expected_ce, expected_se]))
    assert counts.tolist() == [3, 3]
