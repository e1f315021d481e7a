#!/usr/bin/env bash
# One short check of the GPU paths (a few minutes on one GPU), none of which the CPU tests cover:
#   1. the `big` preset (32 layers, E=2048, 1.18B parameters): bf16-autocast train step (forward + backward +
#      AdamW), samples/s and model FLOP utilisation (analytic FLOPs / this GPU's measured dense bf16 matmul FLOP/s);
#   2. sdpa on GPU: `attn_implementation="sdpa"` gives the eager path's outputs (bf16 tolerance) and its speed-up;
#   3. 1-GPU streaming: `training/pretrain.py --streaming true` over a simulated 2,000-subject parquet corpus,
#      train samples/s of the `small` preset (FC computed by the collator on the CPU).
# Exits 0 with a message when no CUDA GPU is visible. Usage: bash benchmarks/gpu_check.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${PY:-.venv/bin/python}}"
[ -x "$PY" ] || PY=python
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False): nothing to check."
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

"$PY" - <<'EOF'
import time

import torch

from lcm_hf import LcmConfig, LcmForBeiPrediction
from lcm_hf.analysis.scaling import forward_flops

BEIS = [{"name": "sex", "kind": "categorical", "classes": ["F", "M"]},
        {"name": "diagnosis", "kind": "categorical", "classes": ["CN", "MCI", "AD"]},
        {"name": "age", "kind": "continuous"}]
device = torch.device("cuda")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")


def timed(fn, iters):
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
peak = 2 * 8192**3 / timed(lambda: a @ a, 20)
print(f"dense bf16 matmul: {peak / 1e12:.0f} TFLOP/s (the MFU yardstick)")

# 1. big preset, bf16 autocast train step
batch = 32
torch.manual_seed(0)
config = LcmConfig.from_preset("big", beis=BEIS, dropout=0.0, attention_dropout=0.0)
model = LcmForBeiPrediction._from_config(config, attn_implementation="sdpa").to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
connectivity = torch.randn(batch, 116, 116, device=device).tanh()
labels = torch.stack([torch.randint(0, 2, (batch,)), torch.randint(0, 3, (batch,)), torch.randn(batch)], 1)
labels = labels.float().to(device)


def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(connectivity=connectivity, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


seconds = timed(step, 10)
flops = 3 * forward_flops(config, executed=True) * batch
print(f"big preset ({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters), bf16 train step, batch "
      f"{batch}: {seconds * 1e3:.1f} ms, {batch / seconds:,.0f} samples/s, MFU {flops / seconds / peak:.1%}, "
      f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
del model, optimizer
torch.cuda.empty_cache()

# 2. sdpa vs eager on GPU
torch.manual_seed(0)
small = LcmConfig.from_preset("small", beis=BEIS, dropout=0.0, attention_dropout=0.0)
fast = LcmForBeiPrediction._from_config(small, attn_implementation="sdpa").to(device).eval()
plain = LcmForBeiPrediction._from_config(small, attn_implementation="eager").to(device).eval()
plain.load_state_dict(fast.state_dict())
with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
    difference = (fast(connectivity).layer_logits.float() - plain(connectivity).layer_logits.float()).abs().max()
    sdpa_s = timed(lambda: fast(connectivity), 20)
    eager_s = timed(lambda: plain(connectivity), 20)
print(f"sdpa on GPU (small preset, bf16 inference, batch {batch}): max |sdpa - eager| = {float(difference):.2e}, "
      f"sdpa {sdpa_s * 1e3:.2f} ms vs eager {eager_s * 1e3:.2f} ms ({eager_s / sdpa_s:.2f}x)")
EOF

# 3. 1-GPU streaming throughput, end to end through the training script
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from bench_streaming import write_corpus
print(f'corpus: {write_corpus(Path(\"$WORK/corpus\"), 2000):.0f} MiB of parquet')
"
"$PY" training/pretrain.py --streaming true --dataset_dirs "$WORK/corpus" --categorical_columns sex \
    --continuous_columns age --window_size 60 --validation_fraction 0.02 --test_fraction 0.02 --preset small \
    --bf16 true --per_device_train_batch_size 64 --max_steps 60 --momentum_steps 10 --eval_strategy no \
    --save_strategy no --logging_steps 20 --load_best_model_at_end false --calibrate false --report_to none \
    --disable_tqdm true --output_dir "$WORK/run" > "$WORK/log.txt" 2>&1 || { tail -30 "$WORK/log.txt"; exit 1; }
"$PY" - "$WORK/run/results.json" <<'EOF'
import json
import sys

log = json.load(open(sys.argv[1]))["log_history"]
final = [entry for entry in log if "train_samples_per_second" in entry][-1]
print(f"1-GPU streaming, small preset, bf16, batch 64, 60 steps: {final['train_samples_per_second']:,.0f} "
      f"samples/s end to end (including start-up: {final['train_runtime']:.1f} s in all)")
EOF
echo "gpu_check: done"
