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
from .errors_lcm import LcmInputError


def true_class_layers(per_layer: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The layer whose logit for the true class is highest: the "max" policy's training pick and the paper's
    best-matched readout layer. per_layer (B, L, C) one BEI's logits, target (B,) class indices -> (B,) layers."""
    index = target.long().view(-1, 1, 1).expand(-1, per_layer.shape[1], 1)  # (B, L, 1)
    return per_layer.gather(2, index).squeeze(2).argmax(dim=1)


def bei_loss_sums(logits: torch.Tensor, labels: torch.Tensor, beis: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted loss sums (K,) and label counts (K,) of reduced logits (B, P) against labels (B, K):
    cross-entropy over a categorical BEI's tokens, squared error for a continuous one (of standardised values
    where the BEI has a `scale`); samples with a NaN label are ignored. Masked, not indexed: no shape depends on
    the data, so `torch.compile(fullgraph=True)` traces training in one graph."""
    sums, counts = [], []
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        target = labels[:, index]  # (B,)
        known = ~torch.isnan(target)
        safe = torch.where(known, target, torch.zeros_like(target))  # a valid class / value where missing
        bei_logits = logits[:, token_slice]  # (B, C)
        if bei["kind"] == "categorical":
            per_sample = F.cross_entropy(bei_logits.float(), safe.long(), reduction="none")
        else:  # squared error in units of `scale` (1 unless the BEI is standardised)
            per_sample = ((bei_logits[:, 0].float() - safe.float()) / bei.get("scale", 1.0)).square()
        loss = torch.where(known, per_sample, torch.zeros_like(per_sample)).sum()
        sums.append(loss)
        counts.append(known.sum())
    return torch.stack(sums), torch.stack(counts)


def weighted_bei_loss(sums: torch.Tensor, counts: torch.Tensor, beis: list[dict]) -> torch.Tensor:
    """The multitask loss: sum over BEIs of ``loss_weight`` x the mean loss over the labelled samples.
    sums (K,) and counts (K,) from :func:`bei_loss_sums` (counts may span a whole optimizer step)."""
    weights = sums.new_tensor([bei["loss_weight"] for bei in beis])  # (K,)
    return (weights * sums / counts.to(sums.device).clamp(min=1)).sum()


def logits_to_bei_predictions(
    logits: torch.Tensor,
    beis: list[dict],
    temperatures: dict[str, float] | None = None,
    subject_index: torch.Tensor | None = None,
    return_windows: bool = False,
) -> list[dict]:
    """Reduced logits (W, P) -> per-BEI predictions with class names, one per subject: the one home of
    post-processing (`LcmProcessor.post_process` and the pipeline call it).

    Parameters
    ----------
    logits : torch.Tensor
        (W, P) reduced logits of W samples (windows).
    beis : list of dict
        ``config.beis``.
    temperatures : dict, optional
        ``config.temperatures``: probabilities of a categorical BEI are softmax(logits / T) (calibrated).
    subject_index : torch.Tensor, optional
        (W,) the subject of every row; its rows are averaged (mean class probabilities, the label their argmax;
        mean values). Default: every row its own subject.
    return_windows : bool
        Add each BEI's per-row predictions under ``"windows"``.

    Returns
    -------
    list of dict
        One per subject: ``{"sex": {"label": "F", "score": 0.83, "scores": {"F": 0.83, "M": 0.17}},
        "age": {"value": 30.2}}``.
    """
    beis = normalize_beis(beis)
    slices = bei_token_slices(beis)
    num_tokens = slices[-1].stop if slices else 0
    if logits.dim() != 2 or logits.shape[1] != num_tokens:
        raise LcmInputError(f"expected `logits` of shape (B, {num_tokens}), got {tuple(logits.shape)}")
    logits = logits.detach().float().cpu()
    index = torch.arange(logits.shape[0]) if subject_index is None else torch.as_tensor(subject_index).long().cpu()
    if index.shape != (logits.shape[0],):
        raise LcmInputError(f"expected `subject_index` of shape ({logits.shape[0]},), got {tuple(index.shape)}")
    predictions = []
    for subject in range(int(index.max()) + 1 if len(index) else 0):
        rows = logits[index == subject]  # (w, P)
        prediction = {}
        for bei, token_slice in zip(beis, slices):
            values = rows[:, token_slice]
            if bei["kind"] == "continuous":
                entry, windows = {"value": float(values[:, 0].mean())}, [{"value": float(v)} for v in values[:, 0]]
            else:
                temperature = float((temperatures or {}).get(bei["name"], 1.0))
                probabilities = (values / temperature).softmax(dim=-1)  # (w, C)
                entry = _class_entry(bei["classes"], probabilities.mean(dim=0))
                windows = [_class_entry(bei["classes"], p) for p in probabilities]
            if return_windows:
                entry["windows"] = windows
            prediction[bei["name"]] = entry
        predictions.append(prediction)
    return predictions


def _class_entry(classes: list[str], probabilities: torch.Tensor) -> dict:
    scores = probabilities.tolist()
    best = max(range(len(scores)), key=scores.__getitem__)
    return {"label": classes[best], "score": scores[best], "scores": dict(zip(classes, scores))}


__all__ = ["bei_loss_sums", "logits_to_bei_predictions", "true_class_layers", "weighted_bei_loss"]
