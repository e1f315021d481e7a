"""Speed, FLOP utilisation and memory of `LcmForBeiPrediction`, against a plain baseline.

One run measures, in one process (plus one short subprocess per scaling point on CPU, for
peak memory):

1. Dense matmul FLOP/s (fp32 and bf16) of this device, the yardstick for model FLOP utilisation.
2. Ours vs baseline: train-step (forward + backward + AdamW step) and inference samples/s of
   `LcmForBeiPrediction` next to a plain reimplementation of the same architecture with
   `nn.MultiheadAttention` (written below, DETR style), for E=512 and E=2048 (4 layers, N=116,
   batch 32), with the model FLOP utilisation (analytic matmul FLOPs per second / dense FLOP/s).
3. fp32 vs bf16 autocast (`torch.autocast(device, dtype=torch.bfloat16)`), same sizes.
4. Scaling of time and peak memory with N in {116, 200, 400, 1000} and L in {2, 4, 8}.
5. `readout_policy="best_layer"`: inference time vs the deepest selected layer (the model
   computes only `layers_needed()` layers).

Usage:
    python benchmarks/bench_model.py                 # full run, ~10 minutes on 2 CPU cores
    python benchmarks/bench_model.py --quick         # small sizes, < 1 minute (smoke run)
    python benchmarks/bench_model.py --device cuda   # on a GPU (peak memory from the CUDA allocator)

Tables are printed and written to `benchmarks/RESULTS_model.md` (`--output` to change, `--output ""`
to skip). This is a benchmark, not a test: nothing here asserts on a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from lcm_hf import LcmConfig, LcmForBeiPrediction  # noqa: E402
from lcm_hf.analysis.scaling import forward_flops  # noqa: E402

# A realistic vocabulary: 3 categorical BEIs and age (P = 2 + 3 + 3 + 1 = 9 tokens).
BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "diagnosis", "kind": "categorical", "classes": ["CN", "MCI", "AD"]},
    {"name": "handedness", "kind": "categorical", "classes": ["L", "R", "A"]},
    {"name": "age", "kind": "continuous"},
]
CATEGORICAL_BEIS = BEIS[:3]  # P = 8, for the best_layer table (every BEI has a selected layer)


# ============================================================================ baseline
class BaselineDecoderLayer(nn.Module):
    """DETR's post-norm TransformerDecoderLayer with nn.MultiheadAttention, sequence-first like DETR."""

    def __init__(self, hidden, heads, ffn, dropout):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout)
        self.cross_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout)
        self.linear1 = nn.Linear(hidden, ffn)
        self.linear2 = nn.Linear(ffn, hidden)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(hidden) for _ in range(3))
        self.dropout, self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(4))

    def forward(self, tgt, pos, memory):
        """tgt, pos (P, B, E), memory (N, B, E) -> (P, B, E)."""
        q = k = tgt + pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt, need_weights=False)[0]))
        tgt2 = self.cross_attn(tgt + pos, memory, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        tgt2 = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(tgt2))


class BaselineLcm(nn.Module):
    """The same architecture written plainly: FC encoder (Linear + BatchNorm1d + LeakyReLU), zero
    initial token content, query position added to SA q/k and CA q, shared final LayerNorm +
    Linear(E, 1) at every layer, "max" readout with the true class in training, CE + 1e-4 MSE.
    Sequence-first contiguous tensors (DETR's layout; nn.MultiheadAttention's native one)."""

    def __init__(self, num_rois, hidden, layers, heads, ffn, beis, dropout=0.1):
        super().__init__()
        self.beis = beis
        num_tokens = sum(len(b["classes"]) if b["kind"] == "categorical" else 1 for b in beis)
        self.fc_proj = nn.Linear(num_rois, hidden)
        self.fc_norm = nn.BatchNorm1d(hidden)
        self.query_embed = nn.Embedding(num_tokens, hidden)
        self.layers = nn.ModuleList(BaselineDecoderLayer(hidden, heads, ffn, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, fc, labels=None):
        b, n, _ = fc.shape
        rows = fc.transpose(0, 1).reshape(n * b, n)  # ROI-major rows: the memory comes out (N, B, E)
        memory = F.leaky_relu(self.fc_norm(self.fc_proj(rows))).view(n, b, -1)
        pos = self.query_embed.weight.unsqueeze(1).repeat(1, b, 1)  # (P, B, E)
        tgt = torch.zeros_like(pos)
        outs = []
        for layer in self.layers:
            tgt = layer(tgt, pos, memory)
            outs.append(tgt)
        layer_logits = self.head(self.norm(torch.stack(outs))).squeeze(-1).permute(2, 0, 1)  # (B, L, P)
        if labels is None:
            return layer_logits
        loss, start = 0.0, 0
        for k, bei in enumerate(self.beis):
            if bei["kind"] == "continuous":
                loss = loss + 1e-4 * F.mse_loss(layer_logits[:, :, start].mean(1).float(), labels[:, k].float())
                start += 1
                continue
            c = len(bei["classes"])
            per_layer = layer_logits[:, :, start : start + c]  # (B, L, C)
            target = labels[:, k].long()
            true_layer = per_layer.gather(2, target.view(-1, 1, 1).expand(-1, per_layer.shape[1], 1)).squeeze(2)
            picked = per_layer[torch.arange(b, device=fc.device), true_layer.argmax(1)]  # (B, C)
            loss = loss + F.cross_entropy(picked.float(), target)
            start += c
        return loss


def copy_ours_into_baseline(ours: LcmForBeiPrediction, base: BaselineLcm) -> None:
    """Load our weights into the baseline, to check that it computes the same function."""
    m = ours.model
    with torch.no_grad():
        base.fc_proj.load_state_dict(m.fc_encoder.projection.state_dict())
        base.fc_norm.load_state_dict(m.fc_encoder.norm.state_dict())
        base.query_embed.weight.copy_(m.bei_embeddings.weight)
        for lo, lb in zip(m.layers, base.layers):
            for src, dst in ((lo.self_attn, lb.self_attn), (lo.cross_attn, lb.cross_attn)):
                dst.in_proj_weight.copy_(torch.cat([src.q_proj.weight, src.k_proj.weight, src.v_proj.weight]))
                dst.in_proj_bias.copy_(torch.cat([src.q_proj.bias, src.k_proj.bias, src.v_proj.bias]))
                dst.out_proj.load_state_dict(src.out_proj.state_dict())
            lb.linear1.load_state_dict(lo.feed_forward.linear1.state_dict())
            lb.linear2.load_state_dict(lo.feed_forward.linear2.state_dict())
            for i in (1, 2, 3):
                getattr(lb, f"norm{i}").load_state_dict(getattr(lo, f"norm{i}").state_dict())
        base.norm.load_state_dict(ours.readout_norm.state_dict())
        base.head.load_state_dict(ours.readout.state_dict())


# ============================================================================ helpers
def make_config(num_rois, hidden, layers, beis=BEIS, **kwargs) -> LcmConfig:
    return LcmConfig(
        num_rois=num_rois, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=8,
        intermediate_size=768, beis=beis, **kwargs,
    )


def make_ours(cfg: LcmConfig, device) -> LcmForBeiPrediction:
    torch.manual_seed(0)
    return LcmForBeiPrediction(cfg).to(device)


def make_baseline(cfg: LcmConfig, device) -> BaselineLcm:
    torch.manual_seed(0)
    return BaselineLcm(
        cfg.num_rois, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size, cfg.beis
    ).to(device)


def make_batch(batch, num_rois, beis, device, seed=0):
    """Symmetric FC-like matrices (Pearson correlations of random series) and full labels."""
    g = torch.Generator().manual_seed(seed)
    series = torch.randn(batch, num_rois, 64, generator=g)
    series = (series - series.mean(-1, keepdim=True)) / series.std(-1, keepdim=True)
    fc = (series @ series.transpose(1, 2) / 63).clamp(-1, 1)
    cols = []
    for bei in beis:
        if bei["kind"] == "categorical":
            cols.append(torch.randint(len(bei["classes"]), (batch,), generator=g).float())
        else:
            cols.append(20 + 60 * torch.rand(batch, generator=g))
    return fc.to(device), torch.stack(cols, 1).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def autocast_ctx(device, bf16):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def time_fn(fn, device, warmup, iters) -> float:
    """Best (minimum) seconds per call over `iters` calls after `warmup` calls."""
    return time_interleaved({"fn": fn}, device, warmup, iters)["fn"]


MIN_SECONDS = 8.0  # every timing keeps sampling for at least this long (--quick: 0)


def time_interleaved(fns: dict, device, warmup, iters, max_rounds: int = 40) -> dict:
    """Best seconds per call of each callable, calls interleaved (a, b, a, b, ...) so that load from
    other processes hits all of them alike. At least `iters` rounds, and more (up to `max_rounds`) until
    MIN_SECONDS have passed, so that short calls are sampled over a window long enough to include quiet
    moments on a shared machine. The minimum is the least disturbed run."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times = {name: [] for name in fns}
    started = time.perf_counter()
    rounds = 0
    while rounds < iters or (rounds < max_rounds and time.perf_counter() - started < MIN_SECONDS):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: min(values) for name, values in times.items()}


OPTIMIZER = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}
optimizer_kind = "fused"  # set from --optimizer; fused is transformers' Trainer default on torch >= 2.8


def train_step_fn(model, fc, labels, device, bf16, ours: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, **OPTIMIZER[optimizer_kind])

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast_ctx(device, bf16):
            loss = model(fc, labels=labels).loss if ours else model(fc, labels)
        loss.backward()
        optimizer.step()

    return step


def infer_fn(model, fc, device, bf16):
    def run():
        model.eval()
        with torch.inference_mode(), autocast_ctx(device, bf16):
            model(fc)

    return run


def matmul_flops(cfg: LcmConfig, batch: int, executed: bool = False) -> dict:
    """Analytic matmul FLOPs of one forward pass and of one train step of a batch (`lcm_hf.analysis.scaling.forward_flops`;
    backward = 2x forward, except the FC projection whose input needs no gradient: 1x). `executed`: what our
    model runs (absorbed cross-attention where it pays); otherwise the textbook computation (the baseline's)."""
    forward = batch * forward_flops(cfg, executed=executed)
    encoder = 2 * batch * cfg.num_rois * cfg.num_rois * cfg.hidden_size
    return {"forward": forward, "train": 3 * forward - encoder}


def dense_flops_per_s(device, size, iters) -> dict:
    """FLOP/s of a dense (B*N, E) @ (E, E) matmul, the model's dominant shape, fp32 and bf16 (interleaved)."""
    m, k = size
    fns = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(k, k, device=device, dtype=dtype)
        fns[name] = lambda a=a, w=w: a @ w
    seconds = time_interleaved(fns, device, warmup=2, iters=iters)
    return {name: 2 * m * k * k / value for name, value in seconds.items()}


def fmt_mem(mib):
    return "n/a" if mib is None else f"{mib:,.0f}"


def md_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ============================================================================ sections
def bench_vs_baseline(args, device, dense):
    """Ours vs baseline (fp32) and fp32 vs bf16 autocast (ours and baseline), calls interleaved."""
    rows, bf16_rows = [], []
    for hidden in args.hidden_sizes:
        cfg = make_config(args.num_rois, hidden, args.layers)
        fc, labels = make_batch(args.batch, args.num_rois, BEIS, device)
        flops = {"ours": matmul_flops(cfg, args.batch, executed=True), "baseline": matmul_flops(cfg, args.batch)}
        iters = args.iters_large if hidden >= 1024 else args.iters
        models = {"ours": make_ours(cfg, device), "baseline": make_baseline(cfg, device)}
        params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
        # sanity check: the baseline with our weights computes the same function (eval mode)
        copy_ours_into_baseline(models["ours"], models["baseline"])
        models["ours"].eval(), models["baseline"].eval()
        with torch.inference_mode():
            diff = (models["ours"](fc).layer_logits - models["baseline"](fc)).abs().max().item()
        result = {}
        for bf16 in (False, True):
            tag = "bf16" if bf16 else "fp32"
            train = time_interleaved(
                {name: train_step_fn(m, fc, labels, device, bf16, name == "ours") for name, m in models.items()},
                device, 1, iters,
            )
            infer = time_interleaved({name: infer_fn(m, fc, device, bf16) for name, m in models.items()}, device, 1, iters)
            for name in models:
                result[name, bf16] = (train[name], infer[name])
                print(f"  E={hidden} {name:8s} {tag}: train {train[name] * 1e3:8.1f} ms/step, "
                      f"infer {infer[name] * 1e3:8.1f} ms/batch", flush=True)
        del models
        b = args.batch
        (t_o, i_o), (t_b, i_b) = result["ours", False], result["baseline", False]
        mfu = {name: (flops[name]["train"] / result[name, False][0] / dense["fp32"],
                      flops[name]["forward"] / result[name, False][1] / dense["fp32"]) for name in flops}
        rows.append([
            hidden, f"{params['ours'] / 1e6:.2f}M / {params['baseline'] / 1e6:.2f}M",
            f"{b / t_o:.1f}", f"{b / t_b:.1f}", f"**{t_b / t_o:.2f}**",
            f"{b / i_o:.1f}", f"{b / i_b:.1f}", f"**{i_b / i_o:.2f}**",
            f"{mfu['ours'][0]:.0%} / {mfu['baseline'][0]:.0%}", f"{mfu['ours'][1]:.0%} / {mfu['baseline'][1]:.0%}",
            f"{flops['ours']['train'] / 1e9:.0f} / {flops['baseline']['train'] / 1e9:.0f}",
            f"{flops['baseline']['train'] / t_o / 1e9:.0f} / {flops['baseline']['train'] / t_b / 1e9:.0f}",
            f"{diff:.1e}",
        ])
        for name in ("ours", "baseline"):
            (t32, i32), (t16, i16) = result[name, False], result[name, True]
            bf16_rows.append([
                hidden, name, f"{b / t32:.1f}", f"{b / t16:.1f}", f"**{t32 / t16:.2f}**",
                f"{b / i32:.1f}", f"{b / i16:.1f}", f"**{i32 / i16:.2f}**",
                f"{flops[name]['train'] / t16 / dense['bf16']:.0%}",
                f"{flops[name]['forward'] / i16 / dense['bf16']:.0%}",
            ])
    table = md_table(
        ["E", "params ours / base", "train ours (samples/s)", "train base", "train ours/base",
         "infer ours (samples/s)", "infer base", "infer ours/base", "MFU train ours / base",
         "MFU infer ours / base", "GFLOP/step executed ours / base", "textbook GFLOP/s ours / base",
         "max |Δ logit|"],
        rows,
    )
    bf16_table = md_table(
        ["E", "model", "train fp32 (samples/s)", "train bf16", "train bf16/fp32",
         "infer fp32 (samples/s)", "infer bf16", "infer bf16/fp32", "MFU train (bf16 yardstick)",
         "MFU infer (bf16 yardstick)"],
        bf16_rows,
    )
    return table, bf16_table


def scaling_memory(args, device, num_rois, layers) -> dict:
    """Peak memory of one (N, L) point: on CPU in a fresh subprocess (peak RSS), on CUDA from the allocator."""
    spec = {"num_rois": num_rois, "layers": layers, "hidden": args.scaling_hidden, "batch": args.batch,
            "device": str(device), "threads": torch.get_num_threads(), "optimizer": optimizer_kind}
    if device.type == "cpu":
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    return run_scaling_worker(spec)


def rss_mib(field: str = "VmRSS") -> float:
    """Resident set of this process (VmRSS) or its peak (VmHWM), MiB; falls back to ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def run_scaling_worker(spec) -> dict:
    """Peak memory of inference, then of train steps (the second step holds the AdamW state), of one point."""
    device = torch.device(spec["device"])
    torch.set_num_threads(spec["threads"])
    cfg = make_config(spec["num_rois"], spec["hidden"], spec["layers"])
    model = make_ours(cfg, device)
    fc, labels = make_batch(spec["batch"], spec["num_rois"], BEIS, device)
    infer, train = infer_fn(model, fc, device, False), train_step_fn(model, fc, labels, device, False, True)
    if device.type == "cuda":
        def measure(fn):
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            fn(), fn()
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        infer_mem = measure(infer)
        train_mem = measure(train)
    else:
        # Peak RSS over the RSS after building model and inputs; inference first, then training.
        start = rss_mib()
        resettable = reset_peak_rss()
        infer(), infer()
        infer_mem = rss_mib("VmHWM") - start
        if resettable:
            reset_peak_rss()
        train(), train()
        train_mem = rss_mib("VmHWM") - start
    return {"train_mem": train_mem, "infer_mem": infer_mem,
            "params_mib": sum(p.numel() for p in model.parameters()) * 4 / 2**20}


def bench_scaling(args, device):
    points = [(n, args.layers) for n in args.scaling_rois] + [
        (args.num_rois, depth) for depth in args.scaling_layers if depth != args.layers
    ]
    results = {point: scaling_memory(args, device, *point) for point in points}
    train_fns, infer_fns = {}, {}
    for n, depth in points:
        model = make_ours(make_config(n, args.scaling_hidden, depth), device)
        fc, labels = make_batch(args.batch, n, BEIS, device)
        train_fns[n, depth] = train_step_fn(model, fc, labels, device, False, True)
        infer_fns[n, depth] = infer_fn(model, fc, device, False)
    train = time_interleaved(train_fns, device, 1, args.scaling_iters)
    infer = time_interleaved(infer_fns, device, 1, args.scaling_iters)
    del train_fns, infer_fns
    for (n, depth), r in results.items():
        r["train"], r["infer"] = train[n, depth], infer[n, depth]
        print(f"  N={n:5d} L={depth}: train {r['train'] * 1e3:8.1f} ms, infer {r['infer'] * 1e3:8.1f} ms, "
              f"mem train {r['train_mem']:.0f} MiB, infer {r['infer_mem']:.0f} MiB", flush=True)

    def rows(keys, ref):
        out = []
        for key in keys:
            r = results[key]
            out.append([key[0], key[1], f"{r['train'] * 1e3:.0f}", f"{r['train'] / results[ref]['train']:.2f}",
                        f"{r['infer'] * 1e3:.0f}", f"{r['infer'] / results[ref]['infer']:.2f}",
                        f"{r['params_mib']:.0f}", fmt_mem(r["train_mem"]), fmt_mem(r["infer_mem"])])
        return out

    headers = ["N", "L", "train ms/step", "× (vs first row)", "infer ms/batch", "×", "params MiB (fp32)",
               "peak Δ train MiB", "peak Δ infer MiB"]
    ref = (args.scaling_rois[0], args.layers)
    n_table = md_table(headers, rows([(n, args.layers) for n in args.scaling_rois], ref))
    l_keys = [(args.num_rois, depth) for depth in args.scaling_layers]
    l_table = md_table(headers, rows(l_keys, l_keys[0]))
    return n_table, l_table


def bench_best_layer(args, device):
    cfg = make_config(args.num_rois, args.best_layer_hidden, args.best_layer_layers, beis=CATEGORICAL_BEIS,
                      readout_policy="best_layer")
    model = make_ours(cfg, device).eval()
    fc, _ = make_batch(args.batch, args.num_rois, CATEGORICAL_BEIS, device)
    names = [b["name"] for b in CATEGORICAL_BEIS]
    run = infer_fn(model, fc, device, False)
    # BEIs read from different layers, the deepest one at `deepest`; "max" policy computes every layer.
    settings = {deepest: ("best_layer", {names[0]: 0, names[1]: deepest // 2, names[2]: deepest})
                for deepest in range(cfg.num_hidden_layers)}
    settings["max"] = ("max", None)
    needed = {}

    def runner(key):
        def call():
            model.config.readout_policy, layers = settings[key]
            model.config.set_readout_layers(layers)
            needed[key] = model.layers_needed()
            run()
        return call

    times = time_interleaved({key: runner(key) for key in settings}, device, 1, args.iters)
    first = times[0]
    rows = []
    for key, (policy, layers) in settings.items():
        label = key if policy == "best_layer" else "(policy max)"
        rows.append([label, json.dumps(layers) if layers else "-", needed[key], f"{times[key] * 1e3:.1f}",
                     f"{times[key] / first:.2f}", f"{args.batch / times[key]:.1f}"])
        print(f"  {label}: layers computed {needed[key]}, {times[key] * 1e3:.1f} ms/batch", flush=True)
    return md_table(["deepest selected layer", "readout_layers", "layers computed", "infer ms/batch",
                     "× (vs deepest=0)", "samples/s"], rows)


# ============================================================================ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes and few iterations (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (E=512 and small cases)")
    parser.add_argument("--iters-large", type=int, default=None, help="timed iterations for E=2048")
    parser.add_argument("--optimizer", default="fused", choices=list(OPTIMIZER),
                        help="AdamW implementation (default fused, as transformers' Trainer on torch >= 2.8)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["baseline", "scaling", "best_layer"])
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS_model.md")))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch, args.num_rois, args.layers = 32, 116, 4
    args.hidden_sizes = [512, 2048]
    args.scaling_rois, args.scaling_layers = [116, 200, 400, 1000], [2, 4, 8]
    args.scaling_hidden = 512
    args.best_layer_hidden, args.best_layer_layers = 2048, 4
    iters, iters_large, args.scaling_iters = 7, 5, 4
    if args.quick:
        global MIN_SECONDS
        MIN_SECONDS = 0.0
        args.batch, args.hidden_sizes, args.scaling_rois = 8, [64, 256], [116, 200, 400]
        args.scaling_hidden, args.best_layer_hidden = 64, 128
        iters, iters_large, args.scaling_iters = 2, 2, 2
    args.iters = args.iters or iters
    args.iters_large = args.iters_large or iters_large
    return args


def main(argv=None):
    args = parse_args(argv)
    global optimizer_kind
    optimizer_kind = args.optimizer
    if args.worker:
        optimizer_kind = json.loads(args.worker).get("optimizer", optimizer_kind)
        print(json.dumps(run_scaling_worker(json.loads(args.worker))))
        return
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu}, {torch.get_num_threads()} threads"
    isa = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else "cuda"
    print(f"device: {name} ({isa}); torch {torch.__version__}", flush=True)

    dense_shape = (args.batch * args.num_rois, max(args.hidden_sizes))
    dense = dense_flops_per_s(device, dense_shape, 10)
    print(f"dense matmul {dense_shape[0]}x{dense_shape[1]} @ {dense_shape[1]}x{dense_shape[1]}: "
          f"fp32 {dense['fp32'] / 1e9:.0f} GFLOP/s, bf16 {dense['bf16'] / 1e9:.0f} GFLOP/s", flush=True)

    sections = [
        "# LCM model benchmark\n",
        f"`python benchmarks/bench_model.py{' --quick' if args.quick else ''}"
        f"{'' if args.device == 'cpu' else ' --device ' + args.device}` — device: {name} ({isa}), "
        f"torch {torch.__version__}. Batch {args.batch}, N={args.num_rois}, L={args.layers}, 8 heads, FFN 768, "
        f"P={sum(len(b['classes']) if b['kind'] == 'categorical' else 1 for b in BEIS)} BEI tokens "
        "(sex 2, diagnosis 3, handedness 3, age 1); times are the best of k interleaved runs (see below); samples/s = batch / time.\n",
        f"Dense matmul yardstick ({dense_shape[0]}×{dense_shape[1]} @ {dense_shape[1]}×{dense_shape[1]}, "
        f"same process): fp32 **{dense['fp32'] / 1e9:.0f} GFLOP/s**, bf16 **{dense['bf16'] / 1e9:.0f} GFLOP/s**. "
        "MFU = analytic matmul FLOPs of the step / time / that yardstick.\n",
    ]
    if "baseline" not in args.skip:
        print("ours vs baseline, fp32 and bf16 autocast:", flush=True)
        table, bf16_table = bench_vs_baseline(args, device, dense)
        sections += [
            "## Ours vs baseline (fp32)\n",
            "Baseline: the same architecture written plainly in this script with `nn.MultiheadAttention` "
            "(DETR's sequence-first layout, contiguous; `need_weights=False`, its fastest path; packed "
            "in-projection, so cross-attention k/v is one matmul). Train step = forward + loss + backward + "
            f"AdamW step ({args.optimizer}; dropout on); inference = `inference_mode` forward. "
            "`max |Δ logit|`: the baseline loaded with our weights vs ours (eval mode): the same function.\n",
            "Ours runs cross-attention with the key/value projections absorbed into the P queries "
            "(`LcmAttention._absorbed_cross_attention`, used while P is small next to N and E), so it executes "
            "fewer FLOPs than the textbook computation: `GFLOP/step executed` counts what each model runs, "
            "`MFU` divides that by time and the dense yardstick, `textbook GFLOP/s` divides the textbook "
            "(baseline) FLOPs by each model's time, i.e. the useful throughput.\n",
            table + "\n",
            "## fp32 vs bf16 autocast\n",
            f"`torch.autocast('{device.type}', dtype=torch.bfloat16)` around forward and loss, fp32 weights "
            f"and AdamW ({args.optimizer}).\n",
            bf16_table + "\n",
        ]
    if "scaling" not in args.skip:
        print(f"scaling (ours, E={args.scaling_hidden}, fp32):", flush=True)
        n_table, l_table = bench_scaling(args, device)
        mem_note = (
            "peak Δ = `torch.cuda.max_memory_allocated()` during the runs minus memory allocated before them "
            "(model and inputs)"
            if device.type == "cuda"
            else "times are measured in this process, all points interleaved; for memory each point runs "
            "in a fresh subprocess (2 inference calls, then 2 train steps): peak Δ = peak resident set (VmHWM, reset through "
            "/proc/self/clear_refs before each phase) minus the RSS after building the model and inputs: "
            "inference (run first) = activations and workspace; train = activations + gradients + AdamW state "
            "(2× params) + workspace. It is RSS, so it includes allocator slack and excludes nothing torch "
            "allocates"
        )
        sections += [
            f"## Scaling with N (E={args.scaling_hidden}, L={args.layers}, fp32)\n",
            f"Ours, fp32, batch {args.batch}; {mem_note}.\n",
            n_table + "\n",
            f"## Scaling with L (E={args.scaling_hidden}, N={args.num_rois}, fp32)\n",
            l_table + "\n",
        ]
    if "best_layer" not in args.skip:
        print(f"best_layer inference (E={args.best_layer_hidden}, L={args.best_layer_layers}):", flush=True)
        sections += [
            f"## best_layer readout: inference time vs deepest selected layer "
            f"(E={args.best_layer_hidden}, L={args.best_layer_layers}, fp32)\n",
            "3 categorical BEIs (P=8), `readout_policy=\"best_layer\"`, every BEI with a selected layer; "
            "the model computes `layers_needed()` = deepest + 1 layers.\n",
            bench_best_layer(args, device) + "\n",
        ]
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sections.append(
        f"Total benchmark time: {elapsed:.0f} s. Load average (1 min) at start / end: {load_start:.1f} / "
        f"{load_end:.1f} on {os.cpu_count()} CPUs; torch threads: {torch.get_num_threads()}. Timings: "
        f"at least {args.iters} (E=2048: {args.iters_large}) interleaved rounds after a warm-up, more "
        f"until {MIN_SECONDS:.0f} s have passed (at most 40), best kept, so that other "
        "processes on a shared machine disturb the compared models alike.\n"
    )
    report = "\n".join(sections)
    print("\n" + report)
    if args.output:
        Path(args.output).write_text(report)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
