"""Model scale: the parameter / FLOP table of the presets, and a small-scale scaling study.

    python modeling/model_scale.py                  # preset table + scaling study (a few minutes on 2 cores)
    python modeling/model_scale.py --quick          # tiny study (under a minute)
    python modeling/model_scale.py --table-only     # just the preset table

1. Preset table: parameters of `LcmConfig.from_preset(name)` (N=116, E=2048, 8 heads, FFN 768, and
   P=7 BEI tokens: 4 dataset classes + sex (2) + age (1)) against the reference code's counts, and the
   forward FLOPs per sample (2 x multiply-accumulates of every matmul; the training step is about 3x).
2. Scaling study, a small-scale version of the paper's Fig. 2 on the SIMULATED demo cohort: training
   loss after a fixed budget of steps vs parameter count, for LCM decoders of growing size and for an
   MLP-head baseline with the same parameter count (an MLP on the upper triangle of the FC matrix,
   as deep as the decoder, width solved to match the decoder's parameter count). Both use the same
   multitask BEI loss, optimiser, batches and steps; the decoder is read out with the mean over
   layers (the "momentum" stage) so that its training loss is not lowered by the "max" policy's
   peeking at the labels. Writes ``scaling.png``, ``scaling.csv``, ``scaling.md`` and ``presets.csv``.

Numbers from the demo cohort say how the two heads optimise at toy scale on simulated data; they are
not a reproduction of the paper's result at 100M+ parameters.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from lcm_hf import PRESETS, LcmConfig, LcmForBeiPrediction

REFERENCE_PARAMETERS_M = {"small": 147.19, "base": 294.1, "mid": 734.9, "big": 1175.7}
"""Parameter counts (millions) of the reference code's model sizes (4, 8, 20, 32 layers)."""
TABLE_BEIS = [
    {"name": "dataset_class", "kind": "categorical", "classes": ["c0", "c1", "c2", "c3"]},
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "age", "kind": "continuous"},
]


# ----------------------------------------------------------------------------- parameters and FLOPs
def count_parameters(config: LcmConfig) -> int:
    """Parameters of `LcmForBeiPrediction(config)`, built on the meta device (no memory, instant)."""
    with torch.device("meta"):
        model = LcmForBeiPrediction(config)
    return sum(p.numel() for p in model.parameters())


def forward_flops(config: LcmConfig) -> int:
    """Forward FLOPs per sample (2 x multiply-accumulates of every matmul; norms, softmax, biases and
    activations, all O(tokens x E), are left out):

    - FC encoder: N rows x Linear(N -> E);
    - per layer, self-attention: q/k/v/out projections of P tokens + scores and weighted sum (P x P);
      cross-attention: q/out of P tokens, k/v of N memory rows + scores and weighted sum (P x N);
      feed-forward: P tokens x (E -> F -> E);
    - readout: every layer's P tokens x Linear(E -> 1).
    """
    n, e, f, p, L = (config.num_rois, config.hidden_size, config.intermediate_size, config.num_bei_tokens,
                     config.num_hidden_layers)
    encoder = n * n * e
    self_attention = 4 * p * e * e + 2 * p * p * e
    cross_attention = 2 * p * e * e + 2 * n * e * e + 2 * p * n * e
    feed_forward = 2 * p * e * f
    readout = L * p * e
    return 2 * (encoder + L * (self_attention + cross_attention + feed_forward) + readout)


def preset_table(beis: list[dict] | None = None):
    """One row per preset: layers, parameters (M), the reference count (M), the difference (%) and the
    forward / training GFLOPs per sample. Returns a `pandas.DataFrame`."""
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
    """Baseline: an MLP on the upper triangle of the FC matrix, `depth` hidden layers of `width`,
    one logit per BEI token (the same output layout as LCM)."""

    def __init__(self, num_rois: int, num_tokens: int, width: int, depth: int):
        super().__init__()
        self.register_buffer("triu", torch.triu_indices(num_rois, num_rois, offset=1), persistent=False)
        sizes = [num_rois * (num_rois - 1) // 2] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], num_tokens))
        self.net = nn.Sequential(*layers)

    def forward(self, connectivity: torch.Tensor) -> torch.Tensor:
        return self.net(connectivity[:, self.triu[0], self.triu[1]])


def mlp_parameters(num_rois: int, num_tokens: int, width: int, depth: int) -> int:
    inputs = num_rois * (num_rois - 1) // 2
    return (inputs + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * num_tokens


def matched_mlp_width(target: int, num_rois: int, num_tokens: int, depth: int) -> int:
    """The width whose MLP head has the parameter count closest to `target`."""
    best, best_gap = 1, math.inf
    low, high = 1, 1
    while mlp_parameters(num_rois, num_tokens, high, depth) < target:
        high *= 2
    while low <= high:
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
def demo_training_data(num_subjects: int, seed: int = 0):
    """(S, 116, 116) Pearson FC, (S, K) labels and the BEI list of the simulated pretraining datasets."""
    from lcm_hf.data.demo import PRETRAIN_DATASETS, demo_vocabularies, make_demo_cohort
    from lcm_hf.vocabulary_lcm import BeiVocabulary

    cohort = make_demo_cohort(seed=seed, n_subjects=num_subjects, datasets=PRETRAIN_DATASETS,
                              representation="connectivity")
    vocabularies = demo_vocabularies(cohort)
    vocabulary = BeiVocabulary.merge(*[vocabularies[name] for name in PRETRAIN_DATASETS])
    fcs, labels = [], []
    for ds in cohort.values():
        fcs.append(torch.as_tensor(np.asarray(ds["connectivity"], dtype=np.float32)))
        columns = {c: list(ds[c]) if c in ds.column_names else [None] * len(ds) for c in vocabulary.names}
        labels.append(vocabulary.encode(columns))
    return torch.cat(fcs), torch.cat(labels), vocabulary.to_config()


def _bei_loss(config: LcmConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The LCM multitask loss (weighted per-BEI means) of logits (B, P), shared by both heads."""
    sums, counts = LcmForBeiPrediction.bei_losses(SimpleNamespace(config=config), logits, labels)
    weights = logits.new_tensor([bei["loss_weight"] for bei in config.beis])
    return (weights * sums / counts.clamp(min=1)).sum()


def train_curve(model: nn.Module, forward, fc: torch.Tensor, labels: torch.Tensor, config: LcmConfig,
                steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Train `model` for `steps` AdamW steps on random batches; the loss of every step."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(fc), (batch_size,), generator=generator)
        loss = _bei_loss(config, forward(fc[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()) if math.isfinite(float(loss.detach())) else float("nan"))
    return losses


def scaling_study(fc, labels, beis, sizes, steps: int, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                  log=print):
    """Train an LCM decoder per (hidden, layers) in `sizes` and a parameter-matched MLP head; returns
    a `pandas.DataFrame` (one row per model) and the loss curves."""
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
            ("lcm_decoder", decoder, lambda x, m=decoder: m(x, readout_stage="momentum").logits,
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


def plot_scaling(table, curves, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="runs/model_scale")
    parser.add_argument("--quick", action="store_true", help="three small sizes, few subjects and steps (< 1 min)")
    parser.add_argument("--table-only", action="store_true", help="print the preset table and stop")
    parser.add_argument("--subjects", type=int, default=None, help="subjects per demo dataset (default 120; quick 40)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (default 120; quick 25)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    table = preset_table()
    print("Presets (N=116, E=2048, 8 heads, FFN 768, P=7 BEI tokens):")
    print(table.to_string(index=False))
    table.to_csv(output / "presets.csv", index=False)
    if args.table_only:
        return 0

    subjects = args.subjects or (40 if args.quick else 120)
    steps = args.steps or (25 if args.quick else 120)
    sizes = [(16, 1), (32, 2), (64, 2)] if args.quick else [(16, 1), (32, 2), (64, 2), (96, 3), (128, 4)]
    fc, labels, beis = demo_training_data(subjects, seed=args.seed)
    print(f"\nScaling study on the SIMULATED demo cohort: {len(fc)} scans, {steps} steps x batch {args.batch_size}")
    study, curves = scaling_study(fc, labels, beis, sizes, steps, args.batch_size, args.lr, args.seed)
    study.to_csv(output / "scaling.csv", index=False)
    (output / "scaling.md").write_text(
        f"Scaling study on the simulated demo cohort ({len(fc)} scans, {steps} steps, batch {args.batch_size}, "
        f"AdamW lr {args.lr}).\n\n" + study.to_markdown(index=False) + "\n"
        if _has_tabulate() else study.to_string(index=False) + "\n"
    )
    plot_scaling(study, curves, output / "scaling.png",
                 f"Scaling on the simulated demo cohort ({len(fc)} scans, {steps} steps): LCM decoder vs MLP head")
    print(study.to_string(index=False))
    print(f"wrote {output / 'scaling.png'}, scaling.csv, scaling.md, presets.csv")
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
