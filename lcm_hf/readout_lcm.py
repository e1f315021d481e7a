"""The readout rules, from per-layer BEI-token logits to losses and predictions: one home for each.

- :func:`true_class_layers`: the layer whose true-class logit is highest (the "max" policy's training pick,
  the paper's best-matched readout layer).
- :func:`bei_loss_sums` / :func:`weighted_bei_loss`: the multitask loss over BEIs with missing labels.
- :func:`logits_to_bei_predictions`: reduced logits -> per-BEI labels, scores and values.

Part of the model core shipped as Hub remote code: imports only torch and `configuration_lcm`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .configuration_lcm import bei_token_slices, normalize_beis


def true_class_layers(per_layer: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The layer whose logit for the true class is highest: the "max" policy's training pick and the paper's
    best-matched readout layer. per_layer (B, L, C) one BEI's logits, target (B,) class indices -> (B,) layers."""
    index = target.long().view(-1, 1, 1).expand(-1, per_layer.shape[1], 1)  # (B, L, 1)
    return per_layer.gather(2, index).squeeze(2).argmax(dim=1)


def bei_loss_sums(logits: torch.Tensor, labels: torch.Tensor, beis: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted loss sums (K,) and label counts (K,) of reduced logits (B, P) against labels (B, K):
    cross-entropy over a categorical BEI's tokens, squared error for a continuous one (of standardised values
    where the BEI has a `scale`); samples with a NaN label are ignored."""
    sums, counts = [], []
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        target = labels[:, index]  # (B,)
        known = ~torch.isnan(target)
        bei_logits = logits[known, token_slice]  # (B_known, C)
        if bei["kind"] == "categorical":
            loss = F.cross_entropy(bei_logits.float(), target[known].long(), reduction="sum")
        else:  # squared error in units of `scale` (1 unless the BEI is standardised)
            error = (bei_logits[:, 0].float() - target[known].float()) / bei.get("scale", 1.0)
            loss = error.square().sum()
        sums.append(loss)
        counts.append(known.sum())
    return torch.stack(sums), torch.stack(counts)


def weighted_bei_loss(sums: torch.Tensor, counts: torch.Tensor, beis: list[dict]) -> torch.Tensor:
    """The multitask loss: sum over BEIs of ``loss_weight`` x the mean loss over the labelled samples.
    sums (K,) and counts (K,) from :func:`bei_loss_sums` (counts may span a whole optimizer step)."""
    weights = sums.new_tensor([bei["loss_weight"] for bei in beis])  # (K,)
    return (weights * sums / counts.to(sums.device).clamp(min=1)).sum()


def logits_to_bei_predictions(logits: torch.Tensor, beis: list[dict]) -> list[dict]:
    """Turn reduced logits (B, P) into per-sample, per-BEI predictions with class names.

    Returns a list of B dicts: `{"sex": {"label": "F", "score": 0.83, "probabilities": {"F": 0.83,
    "M": 0.17}}, "age": {"value": 30.2}}`.
    """
    beis = normalize_beis(beis)
    slices = bei_token_slices(beis)
    num_tokens = slices[-1].stop if slices else 0
    if logits.dim() != 2 or logits.shape[1] != num_tokens:
        raise ValueError(f"expected `logits` of shape (B, {num_tokens}), got {tuple(logits.shape)}")
    predictions = [{} for _ in range(logits.shape[0])]
    for bei, token_slice in zip(beis, slices):
        values = logits[:, token_slice].detach().float().cpu()
        if bei["kind"] == "continuous":
            for sample, value in zip(predictions, values[:, 0].tolist()):
                sample[bei["name"]] = {"value": value}
            continue
        probabilities = values.softmax(dim=-1)
        for sample, row in zip(predictions, probabilities.tolist()):
            best = max(range(len(row)), key=row.__getitem__)
            sample[bei["name"]] = {
                "label": bei["classes"][best],
                "score": row[best],
                "probabilities": dict(zip(bei["classes"], row)),
            }
    return predictions


__all__ = ["bei_loss_sums", "logits_to_bei_predictions", "true_class_layers", "weighted_bei_loss"]
