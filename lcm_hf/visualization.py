"""Interpretation of a trained LCM: cross-attention of BEI tokens over ROIs, and readout layers.

- :func:`collect_cross_attention`: run a model over connectivity matrices (and labels) and average
  the cross-attention (over heads and samples) of every BEI token over the ROIs, at every layer;
  per class (token ``c`` on the samples labelled ``c``), on the rest (token ``c`` on the other
  samples) and their difference, the class-vs-rest contrast; plus which layer the readout policy
  reads each BEI from.
- :func:`attention_table` / :func:`top_rois`: the maps as a long table (CSV) and the top ROIs by name.
- :func:`plot_attention_heatmap`, :func:`plot_layer_attention`, :func:`plot_glass_brain`,
  :func:`plot_readout_layer_histogram`: matplotlib / nilearn figures (saved with :func:`save_figure`).
- :func:`read_roi_table`, :func:`demo_roi_names`, :func:`encode_connectome_dataset`: the inputs of
  :func:`write_attention_report` from the user's files and a connectome dataset.

Glass-brain figures need ROI coordinates (MNI mm) from the user's atlas; nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

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
            raise ValueError(f"expected `kind` in {list(MAP_KINDS)}, got {kind!r}")
        layer = self.readout_layer[bei] if layer is None else layer
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(f"expected `layer` in [0, {self.num_layers}), got {layer}")
        if kind == "token":
            return self.token_maps[layer, self._slice(bei)]
        if bei not in self.class_maps:
            raise ValueError(f"BEI {bei!r} is not categorical (or unknown): only kind='token' applies")
        source = {"class": self.class_maps, "rest": self.rest_maps}.get(kind)
        return (self.contrast_maps(bei) if source is None else source[bei])[layer]

    def row_names(self, bei: str) -> list[str]:
        entry = self._bei(bei)
        return list(entry["classes"]) if entry["kind"] == "categorical" else [entry["name"]]

    def _bei(self, name: str) -> dict:
        for bei in self.beis:
            if bei["name"] == name:
                return bei
        raise ValueError(f"unknown BEI {name!r}; known: {[b['name'] for b in self.beis]}")

    def _slice(self, name: str) -> slice:
        from .configuration_lcm import bei_token_slices

        self._bei(name)
        return dict(zip([b["name"] for b in self.beis], bei_token_slices(self.beis)))[name]


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
        raise ValueError("expected at least one connectivity matrix, got none")
    if labels is not None and len(labels) != len(connectivity):
        raise ValueError(f"expected one labels row per matrix ({len(connectivity)}), got {len(labels)}")
    if roi_names is None:
        roi_names = [f"ROI_{i:03d}" for i in range(num_rois)]
    roi_names = [str(r) for r in roi_names]
    if len(roi_names) != num_rois:
        raise ValueError(f"expected {num_rois} ROI names (config.num_rois), got {len(roi_names)}")
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
                raise ValueError(f"expected labels of shape (S, {len(beis)}), got {tuple(lab.shape)}")
            layer_logits = layer_logits.double().cpu()
            for k, bei, token_slice in categorical:
                name, column = bei["name"], lab[:, k]
                known = ~torch.isnan(column)
                if not known.any():
                    continue
                target = column[known].long()
                per_layer = layer_logits[known][:, :, token_slice]  # (b, L, C)
                index = target.view(-1, 1, 1).expand(-1, num_layers, 1)
                best = per_layer.gather(2, index).squeeze(2).argmax(dim=1).numpy()
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
        raise ValueError(f"expected a 1-d map of {len(roi_names)} ROI values, got shape {values.shape}")
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


# ----------------------------------------------------------------------------- figures
def save_figure(figure, path: str | os.PathLike, formats: Sequence[str] = ("png",), dpi: int = 150) -> list[str]:
    """Save a matplotlib figure (or a nilearn display) as `path` with each suffix in `formats`; close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_suffix("." + fmt.lstrip("."))
        if hasattr(figure, "savefig") and not hasattr(figure, "add_subplot"):  # nilearn display
            figure.savefig(str(target), dpi=dpi)
            figure.close()
            # a nilearn display is gone after close(): re-saving needs the caller to redraw
            if len(formats) > 1:
                raise ValueError("save nilearn displays one format at a time")
        else:
            figure.savefig(target, dpi=dpi, bbox_inches="tight")
        written.append(str(target))
    if hasattr(figure, "add_subplot"):
        plt.close(figure)
    return written


def _roi_ticks(ax, roi_names: Sequence[str], max_labels: int = 40) -> None:
    n = len(roi_names)
    step = max(1, int(np.ceil(n / max_labels)))
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks)
    ax.set_xticklabels([roi_names[i] for i in ticks], rotation=90, fontsize=6)


def plot_attention_heatmap(
    summary: AttentionSummary,
    kind: str = "class",
    beis: Sequence[str] | None = None,
    title: str | None = None,
):
    """Heatmap: one row per BEI class token (at each BEI's readout layer), one column per ROI.

    `kind`: "class" (token c on samples labelled c), "token" (all samples), "rest" or "contrast"
    (class minus rest, diverging colours). Continuous BEIs appear only with kind="token".
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    names = list(beis) if beis is not None else [b["name"] for b in summary.beis]
    rows, labels = [], []
    for name in names:
        bei = summary._bei(name)
        if kind != "token" and bei["kind"] != "categorical":
            continue
        maps = summary.maps(name, kind)
        for class_name, values in zip(summary.row_names(name), maps):
            rows.append(values)
            suffix = "" if bei["kind"] == "continuous" else f"={class_name}"
            labels.append(f"{name}{suffix} (L{summary.readout_layer[name]})")
    if not rows:
        raise ValueError(f"no BEI has a {kind!r} map (kind 'class'/'rest'/'contrast' need categorical BEIs)")
    matrix = np.vstack(rows)
    figure, ax = plt.subplots(figsize=(max(8, 0.09 * matrix.shape[1] + 3), 0.35 * len(rows) + 2.2))
    if kind == "contrast":
        bound = np.nanmax(np.abs(matrix)) or 1.0
        image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
        colorbar = "attention difference (class - rest)"
    else:
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
        colorbar = "mean cross-attention"
    figure.colorbar(image, ax=ax, label=colorbar, fraction=0.03, pad=0.01)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    _roi_ticks(ax, summary.roi_names)
    ax.set_xlabel("ROI")
    default = {
        "class": "Cross-attention over ROIs at the readout layer: class token on samples of that class",
        "token": "Cross-attention over ROIs at the readout layer: BEI tokens, all samples",
        "rest": "Cross-attention over ROIs at the readout layer: class token on the other samples",
        "contrast": "Cross-attention class-vs-rest contrast at the readout layer",
    }[kind]
    ax.set_title(title or f"{default}\n(mean over heads; {summary.num_samples} samples)", fontsize=9)
    return figure


def plot_layer_attention(summary: AttentionSummary, bei: str, class_name: str | None = None, kind: str = "class",
                         title: str | None = None):
    """Heatmap of one BEI token's map at every layer (rows: layers, columns: ROIs); the readout layer is
    marked. For a categorical BEI, `class_name` picks the class token (default: the first class)."""
    import matplotlib.pyplot as plt

    entry = summary._bei(bei)
    if entry["kind"] == "categorical":
        class_name = class_name if class_name is not None else entry["classes"][0]
        if class_name not in entry["classes"]:
            raise ValueError(f"unknown class {class_name!r} of BEI {bei!r}; classes: {entry['classes']}")
        row = entry["classes"].index(class_name)
        label = f"{bei}={class_name}"
    else:
        row, kind, label = 0, "token", bei
    matrix = np.vstack([summary.maps(bei, kind, layer)[row] for layer in range(summary.num_layers)])
    figure, ax = plt.subplots(figsize=(max(8, 0.09 * matrix.shape[1] + 3), 0.45 * summary.num_layers + 2))
    cmap, limits = ("RdBu_r", {}) if kind == "contrast" else ("viridis", {})
    if kind == "contrast":
        bound = np.nanmax(np.abs(matrix)) or 1.0
        limits = {"vmin": -bound, "vmax": bound}
    image = ax.imshow(matrix, aspect="auto", cmap=cmap, interpolation="nearest", **limits)
    figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    ax.set_yticks(range(summary.num_layers))
    readout = summary.readout_layer[bei]
    ax.set_yticklabels([f"layer {i}" + (" (readout)" if i == readout else "") for i in range(summary.num_layers)],
                       fontsize=7)
    _roi_ticks(ax, summary.roi_names)
    ax.set_xlabel("ROI")
    ax.set_title(title or f"Cross-attention of token {label} per layer ({kind} map, mean over heads)", fontsize=9)
    return figure


def plot_glass_brain(values: np.ndarray, coords: np.ndarray, title: str, top_k: int | None = None,
                     diverging: bool = False, display_mode: str = "ortho"):
    """Markers on a nilearn glass brain: one marker per ROI at its (x, y, z) MNI coordinate, coloured
    and sized by `values` (only the `top_k` largest, by |value| when `diverging`). Returns the display."""
    from nilearn import plotting

    values = np.asarray(values, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape != (len(values), 3):
        raise ValueError(f"expected ROI coordinates of shape ({len(values)}, 3), got {coords.shape}")
    keep = np.isfinite(values)
    if top_k is not None:
        key = np.abs(values) if diverging else values
        order = np.argsort(-np.where(keep, key, -np.inf), kind="stable")[:top_k]
        keep = np.zeros_like(keep)
        keep[order] = True
    shown = values[keep]
    span = float(np.abs(shown).max())
    if 0 < span < 1e-2:  # nilearn's colour bar cannot label tiny ranges: show the values in a scaled unit
        exponent = int(np.floor(np.log10(span)))
        shown = shown / 10.0**exponent
        title = f"{title} (x1e{exponent})"
    size = np.abs(shown) if diverging else shown - np.nanmin(shown)
    size = 15 + 85 * size / (size.max() or 1.0)
    if diverging:
        bound = float(np.abs(shown).max()) or 1.0
        low, high = -bound, bound
    else:
        # attention is >= 0: colours from 0 keep nilearn's colour bar well-conditioned for near-uniform maps
        low, high = min(0.0, float(shown.min())), float(shown.max()) or 1.0
    kwargs = {"node_cmap": "RdBu_r" if diverging else "viridis", "node_vmin": low, "node_vmax": high}
    return plotting.plot_markers(shown, coords[keep], node_size=size, title=title, display_mode=display_mode,
                                 colorbar=True, **kwargs)


def plot_readout_layer_histogram(summary: AttentionSummary, title: str | None = None):
    """Bars per BEI: how often each layer is the readout layer at inference (the readout policy's pick
    per sample: the layer of the winning class logit for "max", the stored layer for "best_layer"), and,
    with labels, the layer of the highest true-class logit (the "max" pick in training)."""
    import matplotlib.pyplot as plt

    names = [b["name"] for b in summary.beis]
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False, sharey=False)
    layers = np.arange(summary.num_layers)
    for ax, name in zip(axes[0], names):
        counts = summary.layer_counts[name]
        true_counts = summary.true_class_layer_counts.get(name)
        width = 0.4 if true_counts is not None else 0.8
        ax.bar(layers - (width / 2 if true_counts is not None else 0), counts, width=width, label="inference pick")
        if true_counts is not None:
            ax.bar(layers + width / 2, true_counts, width=width, label="true-class max")
        if counts.sum() == 0:
            ax.text(0.5, 0.5, "layers averaged\n(no single layer)", ha="center", va="center", transform=ax.transAxes,
                    fontsize=8)
        ax.set_xticks(layers)
        ax.set_xlabel("layer")
        where = f"readout L{summary.readout_layer[name]}" if counts.sum() else (
            f"layers averaged; maps at L{summary.readout_layer[name]}")
        ax.set_title(f"{name} ({where})", fontsize=9)
    axes[0][0].set_ylabel("samples")
    if any(counts.sum() > 0 for counts in summary.true_class_layer_counts.values()):
        axes[0][0].legend(fontsize=7)
    figure.suptitle(title or f"Readout layer per BEI (policy: {summary.readout_policy}, {summary.num_samples} samples)",
                    fontsize=10)
    figure.tight_layout()
    return figure


def write_attention_report(
    summary: AttentionSummary,
    output_dir: str | os.PathLike,
    roi_coords: np.ndarray | None = None,
    top_k: int = 10,
    formats: Sequence[str] = ("png", "pdf"),
    per_layer: bool = True,
) -> dict[str, list[str]]:
    """Write every figure and table of `summary` into `output_dir`:

    - ``attention_readout_{class,contrast,token}.{png,pdf}``: heatmaps at the readout layer;
    - ``attention_layers_{bei}_{class}.{png,pdf}``: per-layer heatmaps (with `per_layer`);
    - ``glass_brain_{bei}_{class}_{class|contrast}.png``: markers of the top ROIs (with `roi_coords`);
    - ``readout_layer_histogram.{png,pdf}``;
    - ``attention_maps.csv`` (all layers, all map kinds), ``top_rois.csv`` (readout layer, top `top_k`).

    Returns ``{"figures": [...], "tables": [...]}``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    has_categorical = any(b["kind"] == "categorical" for b in summary.beis)
    kinds = ("class", "contrast", "token") if has_categorical else ("token",)
    for kind in kinds:
        figures += save_figure(plot_attention_heatmap(summary, kind), output_dir / f"attention_readout_{kind}", formats)
    for bei in summary.beis:
        classes = bei["classes"] if bei["kind"] == "categorical" else [None]
        for class_name in classes:
            stem = _safe(bei["name"] if class_name is None else f"{bei['name']}_{class_name}")
            if per_layer:
                figure = plot_layer_attention(summary, bei["name"], class_name)
                figures += save_figure(figure, output_dir / f"attention_layers_{stem}", formats)
            if roi_coords is None:
                continue
            row = 0 if class_name is None else bei["classes"].index(class_name)
            layer = summary.readout_layer[bei["name"]]
            map_kinds = ("class", "contrast") if bei["kind"] == "categorical" else ("token",)
            for kind in map_kinds:
                values = summary.maps(bei["name"], kind)[row]
                if not np.isfinite(values).any():
                    continue
                label = bei["name"] if class_name is None else f"{bei['name']}={class_name}"
                what = {"class": "cross-attention", "token": "cross-attention",
                        "contrast": "class-vs-rest attention contrast"}[kind]
                title = f"{label}: {what}, layer {layer}, top {top_k} ROIs"
                for fmt in formats:
                    display = plot_glass_brain(values, roi_coords, title, top_k=top_k, diverging=kind == "contrast")
                    figures += save_figure(display, output_dir / f"glass_brain_{stem}_{kind}", (fmt,))
    figures += save_figure(plot_readout_layer_histogram(summary), output_dir / "readout_layer_histogram", formats)
    attention_table(summary, "all").to_csv(output_dir / "attention_maps.csv", index=False)
    top_roi_table(summary, top_k).to_csv(output_dir / "top_rois.csv", index=False)
    return {"figures": figures, "tables": [str(output_dir / "attention_maps.csv"), str(output_dir / "top_rois.csv")]}


# ----------------------------------------------------------------------------- inputs of the report
def read_roi_table(names_path: str | os.PathLike | None, coords_path: str | os.PathLike | None, num_rois: int):
    """ROI names and coordinates from the user's atlas files (nothing is downloaded).

    Parameters
    ----------
    names_path : str or PathLike, optional
        ``.txt`` (one name per line) or ``.csv`` / ``.tsv`` with a name / label / roi / region column
        (and optionally x, y, z columns, MNI mm).
    coords_path : str or PathLike, optional
        ``.csv`` / ``.tsv`` with x, y, z columns, or a whitespace-separated text file (N rows of 3);
        overrides the coordinates of `names_path`.
    num_rois : int
        N, the model's number of ROIs: both are checked against it.

    Returns
    -------
    names : list of str or None
    coords : numpy.ndarray or None
        (N, 3) coordinates.

    Raises
    ------
    ValueError
        A missing column or a count / shape that does not match `num_rois`.
    """
    import pandas as pd

    def xyz(table):
        lower = {c.lower(): c for c in table.columns}
        if not all(axis in lower for axis in "xyz"):
            return None
        return table[[lower["x"], lower["y"], lower["z"]]].to_numpy(dtype=float)  # (N, 3)

    names, coords = None, None
    if names_path:
        path = Path(names_path)
        if path.suffix in (".csv", ".tsv"):
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
            column = next((c for c in table.columns if c.lower() in ("name", "label", "roi", "region")), None)
            if column is None:
                raise ValueError(f"expected a name/label/roi/region column in {path}, got {list(table.columns)}")
            names = table[column].astype(str).tolist()
            coords = xyz(table)
        else:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if coords_path:
        path = Path(coords_path)
        if path.suffix in (".csv", ".tsv"):
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
            coords = xyz(table)
            if coords is None:
                raise ValueError(f"expected x, y, z columns in {path}, got {list(table.columns)}")
        else:
            coords = np.loadtxt(path, dtype=float)
    if names is not None and len(names) != num_rois:
        raise ValueError(f"expected {num_rois} ROI names, got {len(names)} in {names_path}")
    if coords is not None and coords.shape != (num_rois, 3):
        raise ValueError(f"expected ROI coordinates of shape ({num_rois}, 3), got {coords.shape}")
    return names, coords


def demo_roi_names() -> list[str]:
    """Names of the simulated demo cohort's ROIs: ``{network}_{index:02d}`` in ROI order."""
    from .data.demo import DEMO_NETWORKS

    return [f"{network}_{i + 1:02d}" for network, size in DEMO_NETWORKS.items() for i in range(size)]


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
    from .data.schema import connectome_column

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


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


__all__ = [
    "AttentionSummary",
    "attention_table",
    "collect_cross_attention",
    "demo_roi_names",
    "encode_connectome_dataset",
    "plot_attention_heatmap",
    "plot_glass_brain",
    "plot_layer_attention",
    "plot_readout_layer_histogram",
    "read_roi_table",
    "save_figure",
    "top_roi_table",
    "top_rois",
    "write_attention_report",
]
