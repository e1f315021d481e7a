"""Model scale: parameter / FLOP table of the presets, and a small-scale scaling study.

- :func:`count_parameters`, :func:`forward_flops`, :func:`preset_table`: parameters of
  ``LcmConfig.from_preset(name)`` against the reference code's counts, and the analytic forward FLOPs
  per sample (2 x multiply-accumulates of every matmul; a training step is about 3x).
- :class:`MlpHead`, :func:`mlp_parameters`, :func:`matched_mlp_width`: the size-matched baseline, an
  MLP on the upper triangle of the FC matrix, as deep as the decoder, its width solved so that its
  parameter count matches the decoder's.
- :func:`demo_training_data`, :func:`scaling_study`, :func:`plot_scaling`,
  :func:`write_scaling_report`: a small-scale version of the paper's Fig. 2: training loss after a
  fixed budget of steps vs parameter count, LCM decoders of growing size against the matched MLP
  heads, with the same multitask BEI loss, optimiser, batches and steps. The decoder is read out
  with the mean over layers (the "momentum" stage) so that its training loss is not lowered by the
  "max" policy's peeking at the labels.

``modeling/model_scale.py`` is the command-line front end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..configuration_lcm import PRESETS, LcmConfig
from ..layers_lcm import absorption_pays
from ..modeling_lcm import LcmForBeiPrediction
from ..readout_lcm import bei_loss_sums, weighted_bei_loss

REFERENCE_PARAMETERS_M = {"small": 147.19, "base": 294.1, "mid": 734.9, "big": 1175.7}
"""Parameter counts (millions) of the reference code's model sizes (4, 8, 20, 32 layers)."""
TABLE_BEIS = [
    {"name": "dataset_class", "kind": "categorical", "classes": ["c0", "c1", "c2", "c3"]},
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "age", "kind": "continuous"},
]
"""The BEI list of the preset table: P=7 tokens (4 dataset classes + sex (2) + age (1))."""


# ----------------------------------------------------------------------------- parameters and FLOPs
def count_parameters(config: LcmConfig) -> int:
    """Parameters of ``LcmForBeiPrediction(config)``.

    Parameters
    ----------
    config : LcmConfig
        The model configuration.

    Returns
    -------
    int
        The number of parameters; the model is built on the meta device (no memory, instant).
    """
    with torch.device("meta"):
        model = LcmForBeiPrediction(config)
    return sum(p.numel() for p in model.parameters())


def forward_flops(config: LcmConfig, executed: bool = False) -> int:
    """Analytic forward FLOPs of one sample.

    FLOPs are 2 x the multiply-accumulates of every matmul; norms, softmax, biases and activations
    (all O(tokens x E)) are left out. With N = ``num_rois``, E = ``hidden_size``,
    F = ``intermediate_size``, P = ``num_bei_tokens`` and L = ``num_hidden_layers``:

    - FC encoder: N rows x Linear(N -> E);
    - per layer, self-attention: q/k/v/out projections of P tokens + scores and weighted sum (P x P);
      cross-attention: q/out of P tokens, k/v of N memory rows + scores and weighted sum (P x N);
      feed-forward: P tokens x (E -> F -> E);
    - readout: every layer's P tokens x Linear(E -> 1).

    This is the textbook computation, which ``torch.utils.flop_counter`` counts on the eager path. With
    `executed`, cross-attention is counted as the sdpa path runs it where that pays
    (`layers_lcm.absorption_pays`): no k/v projection of the N memory rows; the k/v weights act on the
    P query side and every head attends over the E-wide memory.

    Parameters
    ----------
    config : LcmConfig
        The model configuration.
    executed : bool, default False
        Count what the model executes rather than the textbook computation.

    Returns
    -------
    int
        Forward FLOPs per sample; multiply by the batch size for a batch, by about 3 for a training step.
    """
    n, e, f, p, L = (config.num_rois, config.hidden_size, config.intermediate_size, config.num_bei_tokens,
                     config.num_hidden_layers)
    encoder = n * n * e  # (N, N) @ (N, E)
    self_attention = 4 * p * e * e + 2 * p * p * e  # (P, E) @ (E, E) x 4; (P, E) @ (E, P), (P, P) @ (P, E)
    cross_attention = 2 * p * e * e + 2 * n * e * e + 2 * p * n * e  # q, out; k, v of (N, E); (P, N) scores
    h = config.num_attention_heads
    if executed and absorption_pays(h, e, p, n):
        cross_attention = 4 * p * e * e + 2 * h * p * n * e  # q, W_k^T q, W_v o, out; (H*P, N) scores over E
    feed_forward = 2 * p * e * f  # (P, E) @ (E, F), (P, F) @ (F, E)
    readout = L * p * e  # (L, P, E) @ (E, 1)
    return 2 * (encoder + L * (self_attention + cross_attention + feed_forward) + readout)


def preset_table(beis: list[dict] | None = None):
    """Parameters and FLOPs of every preset, against the reference code's counts.

    Parameters
    ----------
    beis : list of dict, optional
        The BEI list the presets are built with (default :data:`TABLE_BEIS`, P=7 tokens).

    Returns
    -------
    pandas.DataFrame
        One row per preset: ``preset``, ``layers``, ``hidden``, ``params_M``, ``reference_M``,
        ``diff_pct`` and the forward / training GFLOPs per sample.
    """
    import pandas as pd

    rows = []
    for name in PRESETS:
        config = LcmConfig.from_preset(name, beis=beis if beis is not None else TABLE_BEIS)
        params = count_parameters(config) / 1e6
        reference = REFERENCE_PARAMETERS_M[name]
        flops = forward_flops(config) / 1e9
        rows.append({
            "preset": name,
            "layers": config.num_hidden_layers,
            "hidden": config.hidden_size,
            "params_M": round(params, 2),
            "reference_M": reference,
            "diff_pct": round(100 * (params - reference) / reference, 3),
            "fwd_GFLOPs_per_sample": round(flops, 2),
            "train_GFLOPs_per_sample": round(3 * flops, 2),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- MLP-head baseline
class MlpHead(nn.Module):
    """Baseline: an MLP on the upper triangle of the FC matrix, one logit per BEI token.

    Parameters
    ----------
    num_rois : int
        N, the side of the FC matrix; the input is its N (N - 1) / 2 upper-triangle values.
    num_tokens : int
        P, the number of BEI tokens (the same output layout as LCM).
    width : int
        Width of every hidden layer.
    depth : int
        Number of hidden layers (Linear + ReLU).
    """

    def __init__(self, num_rois: int, num_tokens: int, width: int, depth: int):
        super().__init__()
        self.register_buffer("triu", torch.triu_indices(num_rois, num_rois, offset=1), persistent=False)  # (2, T)
        sizes = [num_rois * (num_rois - 1) // 2] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_tokens))
        self.net = nn.Sequential(*layers)

    def forward(self, connectivity: torch.Tensor) -> torch.Tensor:
        """Logits (B, P) of connectivity (B, N, N)."""
        return self.net(connectivity[:, self.triu[0], self.triu[1]])  # (B, T) -> (B, P)


def mlp_parameters(num_rois: int, num_tokens: int, width: int, depth: int) -> int:
    """Parameter count of ``MlpHead(num_rois, num_tokens, width, depth)``, in closed form.

    Parameters
    ----------
    num_rois, num_tokens, width, depth : int
        As in :class:`MlpHead`.

    Returns
    -------
    int
        Weights and biases of every layer.
    """
    inputs = num_rois * (num_rois - 1) // 2
    return (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * num_tokens


def matched_mlp_width(target: int, num_rois: int, num_tokens: int, depth: int) -> int:
    """The MLP-head width whose parameter count is closest to `target`.

    Parameters
    ----------
    target : int
        The parameter count to match (a decoder's).
    num_rois, num_tokens, depth : int
        As in :class:`MlpHead`.

    Returns
    -------
    int
        The width (at least 1); ties go to the smaller width.
    """
    best, best_gap = 1, math.inf
    low, high = 1, 1
    while mlp_parameters(num_rois, num_tokens, high, depth) < target:
        high *= 2
    while low <= high:  # the count grows with the width: binary search
        mid = (low + high) // 2
        params = mlp_parameters(num_rois, num_tokens, mid, depth)
        if abs(params - target) < best_gap:
            best, best_gap = mid, abs(params - target)
        if params < target:
            low = mid + 1
        else:
            high = mid - 1
    for width in (best - 1, best, best + 1):
        if width >= 1 and abs(mlp_parameters(num_rois, num_tokens, width, depth) - target) < best_gap:
            best, best_gap = width, abs(mlp_parameters(num_rois, num_tokens, width, depth) - target)
    return best


# ----------------------------------------------------------------------------- the study


def bei_loss(config: LcmConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The LCM multitask loss, shared by the decoder and the MLP head.

    Parameters
    ----------
    config : LcmConfig
        Gives the BEIs, their token slices and loss weights.
    logits : torch.Tensor
        (B, P) one logit per BEI token.
    labels : torch.Tensor
        (B, K) one label per BEI, NaN where missing.

    Returns
    -------
    torch.Tensor
        Scalar: the sum over BEIs of ``loss_weight`` x the mean loss over the labelled samples.
    """
    sums, counts = bei_loss_sums(logits, labels, config.beis)  # (K,), (K,)
    return weighted_bei_loss(sums, counts, config.beis)


def train_curve(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], fc: torch.Tensor,
                labels: torch.Tensor, config: LcmConfig, steps: int, batch_size: int, lr: float,
                seed: int) -> list[float]:
    """Train `model` for `steps` AdamW steps on random batches.

    Parameters
    ----------
    model : torch.nn.Module
        The model whose parameters are optimised.
    forward : callable
        Connectivity (B, N, N) -> logits (B, P).
    fc, labels : torch.Tensor
        (S, N, N) connectivity and (S, K) labels.
    config : LcmConfig
        The BEI layout of the loss (:func:`bei_loss`).
    steps, batch_size : int
        Number of steps and samples per step (drawn with replacement).
    lr : float
        AdamW learning rate (no weight decay).
    seed : int
        Seed of the batch draws: the same seed gives every model the same batches.

    Returns
    -------
    list of float
        The training loss of every step (NaN where it was not finite).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(fc), (batch_size,), generator=generator)  # (B,)
        loss = bei_loss(config, forward(fc[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        losses.append(value if math.isfinite(value) else float("nan"))
    return losses


def scaling_study(fc: torch.Tensor, labels: torch.Tensor, beis: list[dict], sizes: Sequence[tuple[int, int]],
                  steps: int, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                  log: Callable[[str], object] = print):
    """Train an LCM decoder per size and a parameter-matched MLP head on the same batches.

    Parameters
    ----------
    fc, labels : torch.Tensor
        (S, N, N) connectivity and (S, K) labels.
    beis : list of dict
        The ``config.beis`` list of `labels`.
    sizes : sequence of (int, int)
        ``(hidden_size, num_hidden_layers)`` of every decoder (4 heads when the width allows, FFN 2 E,
        no dropout); the MLP head gets the decoder's depth and the width matching its parameters.
    steps, batch_size : int
        Training steps per model and samples per step.
    lr : float
        AdamW learning rate.
    seed : int
        Seed of the initialisation and of the batches.
    log : callable
        Receives one line per trained model.

    Returns
    -------
    table : pandas.DataFrame
        One row per model (decoder, MLP, decoder, MLP, ...): ``model``, ``shape``, ``params``,
        ``initial_loss``, ``final_train_loss`` (mean of the last 10% of steps), ``seconds``.
    curves : dict
        ``(model kind, parameter count) -> list of the per-step losses``.
    """
    import pandas as pd

    num_rois = fc.shape[-1]
    rows, curves = [], {}
    for hidden, layers in sizes:
        heads = 4 if hidden % 4 == 0 else 1
        config = LcmConfig(num_rois=num_rois, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                           intermediate_size=2 * hidden, dropout=0.0, attention_dropout=0.0, beis=beis)
        torch.manual_seed(seed)
        decoder = LcmForBeiPrediction(config)
        params = sum(p.numel() for p in decoder.parameters())
        width = matched_mlp_width(params, num_rois, config.num_bei_tokens, layers)
        torch.manual_seed(seed)
        mlp = MlpHead(num_rois, config.num_bei_tokens, width, layers)
        candidates = (
            ("lcm_decoder", decoder, lambda x, m=decoder: m(x, readout_stage="momentum").logits,  # (B, P)
             f"E={hidden}, L={layers}"),
            ("mlp_head", mlp, mlp, f"width={width}, depth={layers}"),
        )
        for kind, model, forward, shape in candidates:
            start = time.perf_counter()
            losses = train_curve(model, forward, fc, labels, config, steps, batch_size, lr, seed)
            tail = losses[-max(1, steps // 10):]
            final = float(np.mean(tail)) if all(math.isfinite(x) for x in tail) else float("nan")
            count = sum(p.numel() for p in model.parameters())
            rows.append({"model": kind, "shape": shape, "params": count, "initial_loss": round(losses[0], 4),
                         "final_train_loss": round(final, 4), "seconds": round(time.perf_counter() - start, 1)})
            curves[(kind, count)] = losses
            log(f"  {kind:12s} {shape:22s} {count / 1e3:9.1f}k params  loss {losses[0]:.3f} -> {final:.3f}")
    return pd.DataFrame(rows), curves


def plot_scaling(table, curves: dict, path: str | Path, title: str) -> None:
    """Save the study's figure: final loss vs parameters (left) and the loss curves (right).

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`scaling_study`.
    curves : dict
        The curves of :func:`scaling_study`.
    path : str or Path
        The image file to write (parent folders are created).
    title : str
        The figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, colour, label in (("lcm_decoder", "tab:blue", "LCM decoder"), ("mlp_head", "tab:orange", "MLP head")):
        part = table[table["model"] == kind].sort_values("params")
        left.plot(part["params"], part["final_train_loss"], "o-", color=colour, label=label)
        for (curve_kind, count), losses in sorted(curves.items(), key=lambda item: item[0][1]):
            if curve_kind != kind:
                continue
            alpha = 0.3 + 0.7 * (count / max(c for k, c in curves if k == kind))
            window = max(1, len(losses) // 20)
            smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
            right.plot(smooth, color=colour, alpha=alpha, label=f"{label} {count / 1e3:.0f}k")
    left.set_xscale("log")
    left.set_xlabel("parameters")
    left.set_ylabel("final training loss (mean of last 10% of steps)")
    left.set_title("Training loss vs parameter count")
    left.legend()
    right.set_xlabel("step")
    right.set_ylabel("training loss (moving average)")
    right.set_title("Training curves (darker = larger)")
    right.legend(fontsize=6, ncol=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_scaling_report(table, curves: dict, output_dir: str | Path, header: str, title: str) -> list[Path]:
    """Write the study's ``scaling.csv``, ``scaling.md`` and ``scaling.png``.

    Parameters
    ----------
    table, curves
        The results of :func:`scaling_study`.
    output_dir : str or Path
        The folder to write into (created).
    header : str
        The paragraph above the markdown table (the markdown falls back to plain text, without it,
        when ``tabulate`` is not installed).
    title : str
        The figure's title.

    Returns
    -------
    list of Path
        The files written.
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / "scaling.csv", index=False)
    if _has_tabulate():
        markdown = f"{header}\n\n" + table.to_markdown(index=False) + "\n"
    else:
        markdown = table.to_string(index=False) + "\n"
    (output / "scaling.md").write_text(markdown)
    plot_scaling(table, curves, output / "scaling.png", title)
    return [output / "scaling.csv", output / "scaling.md", output / "scaling.png"]


__all__ = [
    "REFERENCE_PARAMETERS_M",
    "TABLE_BEIS",
    "MlpHead",
    "bei_loss",
    "count_parameters",
    "forward_flops",
    "matched_mlp_width",
    "mlp_parameters",
    "plot_scaling",
    "preset_table",
    "scaling_study",
    "train_curve",
    "write_scaling_report",
]
