"""`torch.compile` of `LcmForBeiPrediction` (graph breaks, speed-up) and whether the collator keeps up with training.

Prints, measured in one run:

1. **torch.compile** on CPU, inference (eval, no grad) and a training step (forward + loss + backward):
   graph count and graph breaks from ``torch._dynamo.explain``, whether ``torch.compile(fullgraph=True)`` compiles,
   the largest difference from eager (outputs, and for training the loss and every gradient), and the speed-up (eager time / compiled time). The model declares
   ``_can_compile_fullgraph = True`` because both paths trace into one graph.
2. **Collator vs model**: samples/s of `LcmDataCollator` computing FC from time series (windows of ``--window``
   TRs, N=116, batch 32) against the training samples/s (forward + backward + AdamW) of the ``small`` preset
   (E=2048, 4 layers, N=116) at batch ``--batch``; goal: collator >= 5x the model.

Usage:
    python benchmarks/bench_compile.py            # ~2 minutes on 2 CPU cores (compilation dominates)
    python benchmarks/bench_compile.py --quick    # smaller compiled model, 1 timed step of `small`

A benchmark, not a test: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lcm_hf import LcmConfig, LcmForBeiPrediction  # noqa: E402

BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "diagnosis", "kind": "categorical", "classes": ["CN", "MCI", "AD"]},
    {"name": "age", "kind": "continuous"},
]


def best_time(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def inputs(batch: int, rois: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    series = torch.randn(batch, 64, rois, generator=generator)
    from lcm_hf.connectivity_lcm import pearson_connectivity

    labels = torch.stack([torch.randint(0, 2, (batch,), generator=generator).float(),
                          torch.randint(0, 3, (batch,), generator=generator).float(),
                          torch.randn(batch, generator=generator)], dim=1)
    labels[0, 1] = float("nan")  # a missing label: the loss masks it without a data-dependent shape
    return pearson_connectivity(series), labels


def bench_compile(hidden: int, layers: int, batch: int, rois: int = 116) -> dict:
    import torch._dynamo as dynamo

    torch.manual_seed(0)
    config = LcmConfig(num_rois=rois, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=8,
                       intermediate_size=2 * hidden, beis=BEIS, dropout=0.0, attention_dropout=0.0)
    model = LcmForBeiPrediction(config)
    connectivity, labels = inputs(batch, rois)
    results = {"shape": f"E={hidden}, L={layers}, N={rois}, batch {batch}",
               "declared": bool(getattr(LcmForBeiPrediction, "_can_compile_fullgraph", False))}

    def infer(c):
        return model(connectivity=c).logits

    def loss(c, y):  # forward + multitask loss; AOTAutograd compiles its backward too
        return model(connectivity=c, labels=y).loss

    def run(fn, args, mode):
        if mode == "eval":
            with torch.no_grad():
                return fn(*args)
        value = fn(*args)
        value.backward()
        gradient = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        model.zero_grad(set_to_none=True)
        return torch.cat([value.detach().flatten(), gradient])

    for name, fn, args, mode in (("inference", infer, (connectivity,), "eval"),
                                 ("train step", loss, (connectivity, labels), "train")):
        getattr(model, mode)()
        explanation = dynamo.explain(fn)(*args)
        model.zero_grad(set_to_none=True)
        dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True)
        reference = run(fn, args, mode)
        start = time.perf_counter()
        got = run(compiled, args, mode)  # compiles (forward, and backward for training)
        compile_s = time.perf_counter() - start
        eager = best_time(lambda fn=fn, args=args, mode=mode: run(fn, args, mode), 3)
        fast = best_time(lambda compiled=compiled, args=args, mode=mode: run(compiled, args, mode), 3)
        results[name] = {"graphs": explanation.graph_count, "breaks": explanation.graph_break_count,
                         "max_diff": float((got - reference).abs().max()), "compile_s": compile_s,
                         "eager_s": eager, "compiled_s": fast}
        dynamo.reset()
    return results


def bench_collator_vs_model(window: int, batch: int, model_steps: int) -> dict:
    from lcm_hf.data import LcmDataCollator

    rng = np.random.default_rng(0)
    rows = [{"timeseries": rng.standard_normal((window, 116)).astype(np.float32), "labels": [0.0, 1.0, 0.5],
             "subject_id": f"sub-{i}"} for i in range(256)]
    collator = LcmDataCollator()
    collator(rows[:32])

    def collate_all():
        for start in range(0, len(rows), 32):
            collator(rows[start:start + 32])

    collator_rate = len(rows) / best_time(collate_all, 3)
    torch.manual_seed(0)
    model = LcmForBeiPrediction(LcmConfig.from_preset("small", beis=BEIS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch_inputs = collator(rows[:batch])

    def step():
        out = model(connectivity=batch_inputs["connectivity"], labels=batch_inputs["labels"])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (allocates the optimizer state)
    model_rate = batch * model_steps / best_time(lambda: [step() for _ in range(model_steps)], 1)
    return {"collator": collator_rate, "model": model_rate, "window": window, "batch": batch}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller compiled model, one timed `small` step")
    parser.add_argument("--window", type=int, default=500, help="TRs per window for the collator (paper: 500)")
    parser.add_argument("--batch", type=int, default=8, help="batch of the `small` preset train step")
    args = parser.parse_args(argv)
    hidden, layers, batch = (64, 2, 8) if args.quick else (256, 4, 16)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    result = bench_compile(hidden, layers, batch)
    print(f"torch.compile(fullgraph=True) on CPU, {result['shape']}; "
          f"LcmPreTrainedModel._can_compile_fullgraph = {result['declared']}\n")
    print("| path | graphs | graph breaks | max |compiled - eager| | compile (s) | eager (ms) | compiled (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("inference", "train step"):
        r = result[name]
        print(f"| {name} | {r['graphs']} | {r['breaks']} | {r['max_diff']:.1e} | {r['compile_s']:.1f} | "
              f"{r['eager_s'] * 1e3:.1f} | {r['compiled_s'] * 1e3:.1f} | {r['eager_s'] / r['compiled_s']:.2f}x |")
    rates = bench_collator_vs_model(args.window, args.batch, 1 if args.quick else 2)
    ratio = rates["collator"] / rates["model"]
    print(f"\ncollator vs model (`small` preset, N=116, windows of {rates['window']} TRs):")
    print(f"| FC from time series (LcmDataCollator, batch 32) | {rates['collator']:,.1f} samples/s |")
    print(f"| `small` train step (fp32, batch {rates['batch']}) | {rates['model']:,.2f} samples/s |")
    print(f"| ratio | {ratio:,.0f}x (goal >= 5x: {'met' if ratio >= 5 else 'MISSED'}) |")


if __name__ == "__main__":
    main()
