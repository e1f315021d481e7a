"""Interpretation of a trained LCM: cross-attention of BEI tokens over ROIs, and readout layers.

- :func:`collect_cross_attention`: run a model over connectivity matrices (and labels) and average
  the cross-attention (over heads and samples) of every BEI token over the ROIs, at every layer;
  per class (token ``c`` on the samples labelled ``c``), on the rest (token ``c`` on the other
  samples) and their difference, the class-vs-rest contrast; plus which layer the readout policy
  reads each BEI from.
- :func:`attention_table` / :func:`top_rois`: the maps as a long table (CSV) and the top ROIs by name.
- :func:`encode_connectome_dataset`: connectivity and labels of a connectome dataset through a processor.

Figures and the report: :mod:`lcm_hf.analysis.plots`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors_lcm import LcmInputError
from ..readout_lcm import true_class_layers

MAP_KINDS = ("token", "class", "rest", "contrast")


@dataclass
class AttentionSummary:
    """Cross-attention averages of one model over one set of samples.

    Attributes:
        token_maps: (L, P, N) cross-attention of every BEI token over the ROIs, mean over heads and samples.
        class_maps: per categorical BEI, (L, C, N): token ``c`` averaged over the samples labelled ``c``
            (NaN where a class has no sample).
        rest_maps: per categorical BEI, (L, C, N): token ``c`` averaged over the samples labelled otherwise.
        class_counts: per categorical BEI, (C,) labelled samples per class.
        readout_layer: per BEI, the layer the maps are read at: ``config.readout_layers`` (best_layer),
            the most frequent per-sample pick (max), the last layer otherwise.
        layer_counts: per BEI, (L,) how often the readout policy picked each layer at inference
            (zeros when it averages layers).
        true_class_layer_counts: per categorical BEI, (L,) the layer of highest true-class logit on the
            labelled samples (the pick of the ``max`` policy in training stage 2); empty without labels.
        beis, roi_names, token_names, num_samples, readout_policy: bookkeeping.
    """

    token_maps: np.ndarray
    class_maps: dict[str, np.ndarray]
    rest_maps: dict[str, np.ndarray]
    class_counts: dict[str, np.ndarray]
    readout_layer: dict[str, int]
    layer_counts: dict[str, np.ndarray]
    true_class_layer_counts: dict[str, np.ndarray]
    beis: list[dict]
    roi_names: list[str]
    token_names: list[str]
    num_samples: int
    readout_policy: str
    extra: dict = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return self.token_maps.shape[0]

    def contrast_maps(self, bei: str) -> np.ndarray:
        """(L, C, N): class map minus rest map of every class token of a categorical BEI."""
        return self.class_maps[bei] - self.rest_maps[bei]

    def maps(self, bei: str, kind: str = "class", layer: int | None = None) -> np.ndarray:
        """(C, N) maps of one BEI at `layer` (default: its readout layer). `kind`: "token" (all samples),
        "class", "rest" or "contrast" (the last three for categorical BEIs only)."""
        if kind not in MAP_KINDS:
            raise LcmInputError(f"expected `kind` in {list(MAP_KINDS)}, got {kind!r}")
        layer = self.readout_layer[bei] if layer is None else layer
        if not -self.num_layers <= layer < self.num_layers:
            raise LcmInputError(f"expected `layer` in [0, {self.num_layers}), got {layer}")
        if kind == "token":
            return self.token_maps[layer, self._slice(bei)]
        if bei not in self.class_maps:
            raise LcmInputError(f"BEI {bei!r} is not categorical (or unknown): only kind='token' applies")
        source = {"class": self.class_maps, "rest": self.rest_maps}.get(kind)
        return (self.contrast_maps(bei) if source is None else source[bei])[layer]

    def row_names(self, bei: str) -> list[str]:
        entry = self._bei(bei)
        return list(entry["classes"]) if entry["kind"] == "categorical" else [entry["name"]]

    def _bei(self, name: str) -> dict:
        for bei in self.beis:
            if bei["name"] == name:
                return bei
        raise LcmInputError(f"unknown BEI {name!r}; known: {[b['name'] for b in self.beis]}")

    def _slice(self, name: str) -> slice:
        from ..configuration_lcm import bei_token_slices

        return bei_token_slices(self.beis)[self.beis.index(self._bei(name))]


def _batches(connectivity, labels, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor | None]]:
    n = len(connectivity)
    for start in range(0, n, batch_size):
        fc = connectivity[start : start + batch_size]
        fc = fc if isinstance(fc, torch.Tensor) else torch.as_tensor(np.asarray(fc))
        lab = None
        if labels is not None:
            lab = labels[start : start + batch_size]
            lab = lab if isinstance(lab, torch.Tensor) else torch.as_tensor(np.asarray(lab, dtype=np.float32))
        yield fc.float(), (None if lab is None else lab.float())


@torch.no_grad()
def collect_cross_attention(
    model,
    connectivity: torch.Tensor | np.ndarray | Sequence,
    labels: torch.Tensor | np.ndarray | None = None,
    roi_names: Sequence[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> AttentionSummary:
    """Average a model's cross-attention over samples and heads.

    Args:
        model: an `LcmForBeiPrediction` (a `peft` wrapper works too).
        connectivity: (S, N, N) connectivity matrices (tensor, array or sequence of (N, N)).
        labels: (S, K) labels in the model's BEI order (class index / value / NaN), for the per-class maps,
            the contrasts and the true-class layer histogram.
        roi_names: N ROI names (default ``ROI_000`` ...).
        batch_size: samples per forward pass.
        device: where to run (default: the model's device).

    Returns:
        `AttentionSummary`.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    beis, num_rois = list(config.beis), config.num_rois
    slices = config.bei_token_slices()
    if len(connectivity) == 0:
        raise LcmInputError("expected at least one connectivity matrix, got none")
    if labels is not None and len(labels) != len(connectivity):
        raise LcmInputError(f"expected one labels row per matrix ({len(connectivity)}), got {len(labels)}")
    if roi_names is None:
        roi_names = [f"ROI_{i:03d}" for i in range(num_rois)]
    roi_names = [str(r) for r in roi_names]
    if len(roi_names) != num_rois:
        raise LcmInputError(f"expected {num_rois} ROI names (config.num_rois), got {len(roi_names)}")
    device = torch.device(device) if device is not None else next(base.parameters()).device
    was_training = base.training
    base.eval()
    num_layers, num_tokens = config.num_hidden_layers, config.num_bei_tokens
    token_sum = torch.zeros(num_layers, num_tokens, num_rois, dtype=torch.float64)
    categorical = [(k, bei, s) for k, (bei, s) in enumerate(zip(beis, slices)) if bei["kind"] == "categorical"]
    class_sum = {bei["name"]: torch.zeros(num_layers, s.stop - s.start, num_rois, dtype=torch.float64)
                 for _, bei, s in categorical}
    rest_sum = {name: torch.zeros_like(value) for name, value in class_sum.items()}
    class_n = {name: torch.zeros(value.shape[1], dtype=torch.float64) for name, value in class_sum.items()}
    layer_counts = {bei["name"]: np.zeros(num_layers, dtype=np.int64) for bei in beis}
    true_counts = {bei["name"]: np.zeros(num_layers, dtype=np.int64) for _, bei, _ in categorical}
    total = 0
    try:
        for fc, lab in _batches(connectivity, labels, batch_size):
            fc = fc.to(device)
            backbone = base.model(fc, output_attentions=True, return_dict=True)
            attention = backbone.cross_attentions.mean(dim=2).double().cpu()  # (B, L, P, N)
            token_sum += attention.sum(dim=0)
            total += fc.shape[0]
            layer_logits = base.readout(base.readout_norm(backbone.layer_hidden_states)).squeeze(-1)
            _, picked = base.reduce_layers(layer_logits, "adaptive", None)  # (B, K)
            for k, bei in enumerate(beis):
                chosen = picked[:, k].cpu().numpy()
                chosen = chosen[chosen >= 0]
                layer_counts[bei["name"]] += np.bincount(chosen, minlength=num_layers)[:num_layers]
            if lab is None:
                continue
            if lab.ndim != 2 or lab.shape[1] != len(beis):
                raise LcmInputError(f"expected labels of shape (S, {len(beis)}), got {tuple(lab.shape)}")
            layer_logits = layer_logits.double().cpu()
            for k, bei, token_slice in categorical:
                name, column = bei["name"], lab[:, k]
                known = ~torch.isnan(column)
                if not known.any():
                    continue
                target = column[known].long()
                per_layer = layer_logits[known][:, :, token_slice]  # (b, L, C)
                best = true_class_layers(per_layer, target).numpy()
                true_counts[name] += np.bincount(best, minlength=num_layers)
                maps = attention[known][:, :, token_slice]  # (b, L, C, N)
                for c in range(token_slice.stop - token_slice.start):
                    is_c = target == c
                    class_sum[name][:, c] += maps[is_c, :, c].sum(dim=0)
                    rest_sum[name][:, c] += maps[~is_c, :, c].sum(dim=0)
                    class_n[name][c] += is_c.sum()
                class_n.setdefault(f"{name}/known", torch.zeros(()))
                class_n[f"{name}/known"] += known.sum()
    finally:
        base.train(was_training)

    class_maps, rest_maps, class_counts = {}, {}, {}
    for _, bei, _ in categorical:
        name = bei["name"]
        n_c = class_n[name]
        n_known = class_n.get(f"{name}/known", torch.zeros(()))
        n_rest = n_known - n_c
        with np.errstate(invalid="ignore", divide="ignore"):
            class_maps[name] = (class_sum[name] / n_c.view(1, -1, 1)).numpy()
            rest_maps[name] = (rest_sum[name] / n_rest.view(1, -1, 1)).numpy()
        class_maps[name][:, n_c.numpy() == 0] = np.nan
        rest_maps[name][:, (n_rest == 0).numpy()] = np.nan
        class_counts[name] = n_c.numpy().astype(np.int64)

    readout_layer = {}
    selected = config.readout_layers or {}
    for bei in beis:
        name = bei["name"]
        if config.readout_policy == "best_layer" and name in selected:
            readout_layer[name] = int(selected[name])
        elif layer_counts[name].sum() > 0:
            readout_layer[name] = int(np.argmax(layer_counts[name]))
        else:
            readout_layer[name] = num_layers - 1
    token_names = []
    for bei in beis:
        classes = bei["classes"] if bei["kind"] == "categorical" else [None]
        token_names += [bei["name"] if c is None else f"{bei['name']}={c}" for c in classes]
    return AttentionSummary(
        token_maps=(token_sum / total).numpy(),
        class_maps=class_maps,
        rest_maps=rest_maps,
        class_counts=class_counts,
        readout_layer=readout_layer,
        layer_counts=layer_counts,
        true_class_layer_counts=true_counts if labels is not None else {},
        beis=beis,
        roi_names=roi_names,
        token_names=token_names,
        num_samples=total,
        readout_policy=config.readout_policy,
    )


def top_rois(values: np.ndarray, roi_names: Sequence[str], k: int = 10, absolute: bool = False) -> list[tuple[str, float]]:
    """The `k` ROIs with the largest values (largest |value| with `absolute`), as (name, value)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != len(roi_names):
        raise LcmInputError(f"expected a 1-d map of {len(roi_names)} ROI values, got shape {values.shape}")
    key = np.abs(values) if absolute else values
    key = np.where(np.isnan(key), -np.inf, key)
    order = np.argsort(-key, kind="stable")[:k]
    return [(roi_names[i], float(values[i])) for i in order]


def attention_table(summary: AttentionSummary, layers: str | Sequence[int] = "readout"):
    """The maps as a long `pandas.DataFrame`: one row per (BEI, class, map kind, layer, ROI) with columns
    ``bei, class, token, kind, layer, is_readout_layer, roi_index, roi, value, rank`` (rank 1 = highest
    value within its map; for contrasts, by absolute value). `layers`: "readout", "all" or a list."""
    import pandas as pd

    rows = []
    for bei in summary.beis:
        name = bei["name"]
        if layers == "readout":
            chosen = [summary.readout_layer[name]]
        elif layers == "all":
            chosen = list(range(summary.num_layers))
        else:
            chosen = list(layers)
        kinds = MAP_KINDS if bei["kind"] == "categorical" else ("token",)
        for layer in chosen:
            for kind in kinds:
                maps = summary.maps(name, kind, layer)
                for row_index, class_name in enumerate(summary.row_names(name)):
                    values = maps[row_index]
                    key = np.abs(values) if kind == "contrast" else values
                    key = np.where(np.isnan(key), -np.inf, key)
                    ranks = np.empty(len(values), dtype=np.int64)
                    ranks[np.argsort(-key, kind="stable")] = np.arange(1, len(values) + 1)
                    token = name if bei["kind"] == "continuous" else f"{name}={class_name}"
                    for roi_index, (roi, value) in enumerate(zip(summary.roi_names, values)):
                        rows.append((name, class_name, token, kind, layer, layer == summary.readout_layer[name],
                                     roi_index, roi, float(value), int(ranks[roi_index])))
    return pd.DataFrame(rows, columns=["bei", "class", "token", "kind", "layer", "is_readout_layer",
                                       "roi_index", "roi", "value", "rank"])


def top_roi_table(summary: AttentionSummary, k: int = 10):
    """Top-`k` ROIs by name of every class map and contrast (categorical BEIs) and token map (continuous
    ones) at the readout layer, as a `pandas.DataFrame`."""
    table = attention_table(summary, "readout")
    return table[table["rank"] <= k].sort_values(["bei", "class", "kind", "rank"]).reset_index(drop=True)




















def encode_connectome_dataset(dataset, processor, batch_size: int = 32, max_samples: int | None = None):
    """Connectivity and labels of a connectome dataset, through an `LcmProcessor`.

    Parameters
    ----------
    dataset : datasets.Dataset
        Rows with ``timeseries`` or ``connectivity`` and (optionally) the vocabulary's BEI columns.
    processor : LcmProcessor
        Computes FC from time series and encodes the BEI columns.
    batch_size : int
        Rows per processor call.
    max_samples : int, optional
        Keep only the first rows.

    Returns
    -------
    connectivity : torch.Tensor
        (S, N, N).
    labels : torch.Tensor or None
        (S, K), or None when the dataset has none of the vocabulary's columns.
    """
    from ..data.schema import connectome_column

    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    column = connectome_column(dataset)
    names = processor.vocabulary.names if processor.vocabulary is not None else []
    present = [n for n in names if n in dataset.column_names]
    fcs, labels = [], []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        data = [np.asarray(x, dtype=np.float32) for x in rows[column]]  # B x (T, N) or B x (N, N)
        phenotypes = [{n: rows[n][i] for n in present} for i in range(len(data))] if present else None
        kwargs = {"timeseries": data} if column == "timeseries" else {"connectivity": np.stack(data)}
        batch = processor(**kwargs, phenotypes=phenotypes, return_tensors="pt")
        fcs.append(batch["connectivity"])  # (B, N, N)
        if phenotypes is not None:
            labels.append(batch["labels"])  # (B, K)
    return torch.cat(fcs), (torch.cat(labels) if labels else None)




__all__ = [
    "AttentionSummary",
    "attention_table",
    "collect_cross_attention",
    "encode_connectome_dataset",
    "top_roi_table",
    "top_rois",
]
