"""Figures and the report of a trained LCM's interpretation (:mod:`lcm_hf.analysis.attention`).

- :func:`plot_attention_heatmap`, :func:`plot_layer_attention`, :func:`plot_glass_brain`: cross-attention maps
  (matplotlib / nilearn), saved with :func:`save_figure`.
- :func:`plot_layer_histogram`: the one readout-layer histogram (which layer each sample is read from);
  :func:`plot_readout_layer_histogram` draws it for an :class:`AttentionSummary`.
- :func:`write_attention_report`: every figure and table into a folder; :func:`read_roi_table` reads the ROI
  names and coordinates of the user's atlas (nothing is downloaded).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors_lcm import LcmInputError
from .attention import AttentionSummary, attention_table, top_roi_table


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
                raise LcmInputError("save nilearn displays one format at a time")
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
        raise LcmInputError(f"no BEI has a {kind!r} map (kind 'class'/'rest'/'contrast' need categorical BEIs)")
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
            raise LcmInputError(f"unknown class {class_name!r} of BEI {bei!r}; classes: {entry['classes']}")
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
        raise LcmInputError(f"expected ROI coordinates of shape ({len(values)}, 3), got {coords.shape}")
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


def plot_layer_histogram(
    counts: dict[str, np.ndarray],
    second: dict[str, np.ndarray] | None = None,
    *,
    labels: tuple[str, str] = ("readout pick", "true-class max"),
    selected: dict[str, int] | None = None,
    notes: dict[str, str] | None = None,
    ylabel: str = "samples",
    title: str = "",
):
    """The one readout-layer histogram: bars per BEI of how often each layer is picked.

    Parameters
    ----------
    counts : dict
        BEI name -> (L,) count of samples per layer (e.g. the inference pick).
    second : dict, optional
        BEI name -> (L,) counts drawn beside (e.g. the layer of the highest true-class logit).
    labels : (str, str)
        Legend of `counts` and `second`.
    selected : dict, optional
        BEI name -> the selected layer (``config.readout_layers``), drawn in orange.
    notes : dict, optional
        BEI name -> a subplot title (default: the name).
    """
    import matplotlib.pyplot as plt

    names = list(counts)
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(max(3.2 * len(names), 5.6), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        layers = np.arange(len(counts[name]))
        other = (second or {}).get(name)
        width = 0.4 if other is not None else 0.8
        bars = ax.bar(layers - (width / 2 if other is not None else 0), counts[name], width=width, label=labels[0])
        if other is not None:
            ax.bar(layers + width / 2, other, width=width, label=labels[1])
        if name in (selected or {}):
            bars[selected[name]].set_color("tab:orange")
        if counts[name].sum() == 0:
            ax.text(0.5, 0.5, "layers averaged\n(no single layer)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        ax.set_xticks(layers)
        ax.set_xlabel("layer")
        ax.set_title((notes or {}).get(name, name), fontsize=9)
    axes[0][0].set_ylabel(ylabel)
    if second and any(np.sum(v) > 0 for v in second.values()):
        axes[0][0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_readout_layer_histogram(summary: AttentionSummary, title: str | None = None):
    """Bars per BEI: how often each layer is the readout layer at inference (the readout policy's pick
    per sample: the layer of the winning class logit for "max", the stored layer for "best_layer"), and,
    with labels, the layer of the highest true-class logit (the "max" pick in training)."""
    notes = {}
    for bei in summary.beis:
        name = bei["name"]
        where = (f"readout L{summary.readout_layer[name]}" if summary.layer_counts[name].sum()
                 else f"layers averaged; maps at L{summary.readout_layer[name]}")
        notes[name] = f"{name} ({where})"
    return plot_layer_histogram(
        {b["name"]: summary.layer_counts[b["name"]] for b in summary.beis},
        summary.true_class_layer_counts or None,
        labels=("inference pick", "true-class max"),
        notes=notes,
        title=title or f"Readout layer per BEI (policy: {summary.readout_policy}, {summary.num_samples} samples)",
    )


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
                raise LcmInputError(f"expected a name/label/roi/region column in {path}, got {list(table.columns)}")
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
                raise LcmInputError(f"expected x, y, z columns in {path}, got {list(table.columns)}")
        else:
            coords = np.loadtxt(path, dtype=float)
    if names is not None and len(names) != num_rois:
        raise LcmInputError(f"expected {num_rois} ROI names, got {len(names)} in {names_path}")
    if coords is not None and coords.shape != (num_rois, 3):
        raise LcmInputError(f"expected ROI coordinates of shape ({num_rois}, 3), got {coords.shape}")
    return names, coords


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


__all__ = [
    "plot_attention_heatmap",
    "plot_glass_brain",
    "plot_layer_attention",
    "plot_layer_histogram",
    "plot_readout_layer_histogram",
    "read_roi_table",
    "save_figure",
    "write_attention_report",
]
