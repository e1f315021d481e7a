"""The demo report's figures: loss curves, per-layer validation metrics, and readout-layer histograms."""

from __future__ import annotations

import math

import numpy as np


def plot_loss_curves(runs: dict, path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    for ax, (name, result) in zip(axes[0], runs.items()):
        history = result["log_history"]
        train = [(h["epoch"], h["loss"]) for h in history if "loss" in h and "eval_loss" not in h]
        evals = [(h["epoch"], h["eval_loss"]) for h in history if "eval_loss" in h]
        if train:
            ax.plot(*zip(*train), marker=".", label="train loss")
        if evals:
            ax.plot(*zip(*evals), marker=".", label="validation loss")
        switch = result.get("momentum_epochs")
        if switch:
            ax.axvline(switch, color="grey", linestyle="--", linewidth=1, label="stage 1 -> 2")
        ax.set_title(f"Loss: {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("multitask loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_layer_curves(runs: dict, path: str, metric: str = "balanced_accuracy") -> None:
    """Validation metric of every layer (and of the reduced readout) per epoch, one panel per (run, BEI)."""
    import matplotlib.pyplot as plt

    panels = []
    for name, result in runs.items():
        history = [h for h in result["log_history"] if "eval_loss" in h]
        for bei in result["beis"]:
            if bei["kind"] == "categorical" and f"eval_{bei['name']}/{metric}" in (
                history[-1] if history else {}
            ):
                panels.append((name, bei["name"], history, result.get("momentum_epochs")))
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (name, bei, history, switch) in zip(axes.flat, panels):
        epochs = [h["epoch"] for h in history]
        layer = 0
        while f"eval_{bei}/layer_{layer}/{metric}" in history[-1]:
            ax.plot(
                epochs,
                [h.get(f"eval_{bei}/layer_{layer}/{metric}", np.nan) for h in history],
                label=f"layer {layer}",
            )
            layer += 1
        ax.plot(epochs, [h[f"eval_{bei}/{metric}"] for h in history], "k--", linewidth=1.5, label="readout")
        if switch:
            ax.axvline(switch, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{name}: {bei}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"val {metric.replace('_', ' ')}", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(
        f"Per-layer validation {metric.replace('_', ' ')} per epoch (dotted line: stage switch)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def best_matched_layers(
    layer_logits: np.ndarray, labels: np.ndarray, beis: list[dict]
) -> dict[str, np.ndarray]:
    """Per categorical BEI, for every labelled test window, the layer whose true-class logit is highest
    (``modeling_lcm.true_class_layers``: the paper's best-matched readout layer)."""
    import torch

    from ..configuration_lcm import bei_token_slices
    from ..readout_lcm import true_class_layers

    matched = {}
    for index, (bei, token_slice) in enumerate(zip(beis, bei_token_slices(beis))):
        known = ~np.isnan(labels[:, index])
        if bei["kind"] != "categorical" or not known.any():
            continue
        per_layer = torch.as_tensor(layer_logits[known][:, :, token_slice])  # (n, L, C)
        matched[bei["name"]] = true_class_layers(per_layer, torch.as_tensor(labels[known, index])).numpy()
    return matched


def plot_readout_histogram(matched: dict, selected: dict, num_layers: int, path: str, title: str) -> None:
    """The readout-layer histogram (``analysis.plots.plot_layer_histogram``) of the best-matched layers, as
    fractions of the test windows, with the selected layer in orange."""
    import matplotlib.pyplot as plt

    from ..analysis.plots import plot_layer_histogram

    fractions = {}
    for name, layers in matched.items():
        counts = np.bincount(layers, minlength=num_layers)
        fractions[name] = counts / max(counts.sum(), 1)
    figure = plot_layer_histogram(fractions, selected=selected, ylabel="fraction of test windows", title=title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
