"""Train-step time with and without value checks (tensor reads) inside the forward: issue 8 item 4.

The model's forward checks only shapes and dtypes; the value checks (finite connectivity, finite labels,
labels in class range) run once per batch in `LcmDataCollator`, on the CPU side of the data loader. This
script times, in one process and interleaved, a train step (forward + backward + AdamW step) of
`LcmForBeiPrediction`:

- ``model only``: what the Trainer runs now;
- ``model + value checks in the step``: the same step with the value checks the forward used to run
  (``check_connectivity_values`` + ``check_label_values`` on the step's tensors, as before);
- ``collator checks alone``: the cost of those checks where they live now (per batch, CPU).

On a GPU the checks in the step are host syncs (``.all()`` / ``.any()`` read back a value each), so they stall
the launch queue; on CPU they cost their arithmetic only.

    python benchmarks/bench_train_step.py                  # N=116, E=256, 4 layers, batch 32
    python benchmarks/bench_train_step.py --device cuda    # on a GPU
"""

from __future__ import annotations

import argparse
import os
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lcm_hf import LcmConfig, LcmForBeiPrediction  # noqa: E402
from lcm_hf.connectivity_checks_lcm import check_connectivity_values  # noqa: E402
from lcm_hf.modeling_lcm import check_label_values  # noqa: E402

BEIS = [
    {"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
    {"name": "diagnosis", "kind": "categorical", "classes": ["CN", "MCI", "AD"]},
    {"name": "handedness", "kind": "categorical", "classes": ["L", "R", "A"]},
    {"name": "age", "kind": "continuous"},
]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-rois", type=int, default=116)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = LcmConfig(num_rois=args.num_rois, hidden_size=args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=8, intermediate_size=2 * args.hidden, beis=BEIS)
    model = LcmForBeiPrediction(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    fc = torch.rand(args.batch, args.num_rois, args.num_rois, device=device) * 2 - 1
    fc = (fc + fc.transpose(1, 2)) / 2
    labels = torch.stack([torch.randint(0, 2, (args.batch,)), torch.randint(0, 3, (args.batch,)),
                          torch.randint(0, 3, (args.batch,)), torch.rand(args.batch) * 60 + 20], 1).float().to(device)

    def step(checks: bool):
        if checks:
            check_connectivity_values(fc)
            check_label_values(labels, config.beis)
        optimizer.zero_grad(set_to_none=True)
        model(connectivity=fc, labels=labels, readout_stage="adaptive").loss.backward()
        optimizer.step()

    def checks_alone():
        check_connectivity_values(fc.cpu())
        check_label_values(labels.cpu(), config.beis)

    runs = {"model only": lambda: step(False), "model + value checks in the step": lambda: step(True),
            "collator checks alone": checks_alone}
    for fn in runs.values():
        for _ in range(3):
            fn()
    sync(device)
    best = {name: float("inf") for name in runs}
    for _ in range(args.rounds):  # interleaved rounds, best of each: robust to a busy machine
        for name, fn in runs.items():
            start = time.perf_counter()
            for _ in range(args.iters):
                fn()
            sync(device)
            best[name] = min(best[name], (time.perf_counter() - start) / args.iters * 1e3)
    print(f"device {device}, N={args.num_rois}, E={args.hidden}, L={args.layers}, batch {args.batch}, "
          f"threads {args.threads}")
    for name, ms in best.items():
        print(f"  {name:34s} {ms:8.3f} ms")
    print(f"  ratio with / without checks in the step: {best['model + value checks in the step'] / best['model only']:.3f}")


if __name__ == "__main__":
    main()
