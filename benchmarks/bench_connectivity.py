"""Benchmark: Pearson FC, ours vs nilearn vs a numpy loop, against the matmul floor; collator throughput.

Prints, for each workload, seconds and ratios (x slower than ours) for:
  ours             lcm_hf.connectivity_lcm.pearson_connectivity (torch, float32, batched)
  nilearn default  ConnectivityMeasure(kind="correlation")  (Ledoit-Wolf: shrunk, not Pearson)
  nilearn empir.   ConnectivityMeasure(kind="correlation", cov_estimator=EmpiricalCovariance())
  numpy loop       [np.corrcoef(ts.T) for ts in batch]
  floor            2*B*T*N^2 FLOPs / the float32 batched-matmul FLOP/s measured in this process
  output           writing a fresh (B, N, N) float32 tensor once (its first touch: page faults), which any
                   function returning a new result pays and the floor does not
Then dataset -> model-ready batches (samples/s) through LcmDataCollator.

Run: python benchmarks/bench_connectivity.py [--quick] [--threads K]
Not a test: figures depend on the machine; compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def best_time(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_s(b: int, t: int, n: int) -> float:
    """Best measured float32 FLOP/s of the same batched product ((B, N, T) @ (B, T, N)), over
    chunkings of the batch (chunks that stay in cache are often faster than one big call)."""
    x = torch.randn(b, t, n)
    best = 0.0
    for chunk in sorted({b, 64, 16}):
        if chunk > b:
            continue

        def run(chunk=chunk):
            for start in range(0, b, chunk):
                part = x[start:start + chunk]
                torch.bmm(part.transpose(1, 2), part)

        run()
        best = max(best, 2.0 * b * t * n * n / best_time(run, repeat=5))
    return best


def bench_fc(b: int, t: int, n: int, repeat: int, nilearn_subjects: int | None) -> dict:
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance

    from lcm_hf.connectivity_lcm import flops_pearson, pearson_connectivity

    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, n)).astype(np.float32)
    xt = torch.from_numpy(x)
    pearson_connectivity(xt)
    ours = best_time(lambda: pearson_connectivity(xt), repeat + 2)
    # slow references may run on a subset and are scaled linearly in B (reported)
    m = min(b, nilearn_subjects or b)
    subjects = list(x[:m].astype(np.float64))
    scale = b / m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = best_time(lambda: ConnectivityMeasure(kind="correlation").fit_transform(subjects), 1) * scale
        empirical = best_time(lambda: ConnectivityMeasure(
            kind="correlation", cov_estimator=EmpiricalCovariance()).fit_transform(subjects), 1) * scale
    loop = best_time(lambda: [np.corrcoef(s.T) for s in x[:m]], 1) * scale
    floor = flops_pearson(b, t, n) / matmul_flops_per_s(min(b, 256), t, n)  # FLOP/s on <= 256 subjects
    output = best_time(lambda: torch.empty(b, n, n).fill_(0.0), repeat + 2)
    ref = np.stack([np.corrcoef(s.T) for s in x[:4].astype(np.float64)])
    err = float(np.abs(pearson_connectivity(xt[:4]).double().numpy() - ref).max())
    return {"shape": f"{b} x {t} x {n}", "ours": ours, "nilearn default": default, "nilearn empirical": empirical,
            "numpy loop": loop, "floor": floor, "output": output, "subset": m, "max_err": err}


def bench_collator(n_samples: int = 512, batch_size: int = 32) -> dict:
    from lcm_hf.data import LcmDataCollator, add_connectivity
    from lcm_hf.demo import demo_vocabularies, make_demo_cohort

    cohort = make_demo_cohort(0, n_subjects={"abide_like": n_samples}, datasets=("abide_like",))
    ds_ts = cohort["abide_like"]
    vocab = demo_vocabularies(cohort)["abide_like"]
    collator = LcmDataCollator(vocab)
    results = {}
    for label, ds in (("timeseries rows (FC in collator)", ds_ts),
                      ("connectivity rows (FC precomputed)", add_connectivity(ds_ts))):
        ds = ds.with_format("numpy")

        def run(ds=ds):
            for start in range(0, len(ds), batch_size):
                rows = ds[start:start + batch_size]
                n = len(rows["subject_id"])
                collator([{k: v[i] for k, v in rows.items()} for i in range(n)])

        results[label] = len(ds) / best_time(run, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workloads = [(1000, 200, 116, 100), (200, 1200, 400, 20)]
    if args.quick:
        workloads = [(200, 200, 116, 50), (40, 1200, 400, 10)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    header = "| workload (B x T x N) | method | seconds | x ours | x floor |"
    print(header)
    print("|---|---|---:|---:|---:|")
    goals = []
    for b, t, n, subset in workloads:
        r = bench_fc(b, t, n, repeat=3, nilearn_subjects=subset)
        for method in ("ours", "nilearn default", "nilearn empirical", "numpy loop", "floor", "output"):
            note = f" (timed on {r['subset']}, scaled)" if method not in ("ours", "floor", "output") and r["subset"] < b else ""
            print(f"| {r['shape']} | {method}{note} | {r[method]:.4f} | {r[method] / r['ours']:.1f} | "
                  f"{r[method] / r['floor']:.2f} |")
        print(f"| {r['shape']} | max abs error vs np.corrcoef float64 | {r['max_err']:.1e} | | |")
        goals.append(f"{r['shape']}: nilearn default / ours = {r['nilearn default'] / r['ours']:.1f}x (goal >= 10x), "
                     f"ours / matmul floor = {r['ours'] / r['floor']:.2f}x (goal <= 2x), "
                     f"ours / (floor + output) = {r['ours'] / (r['floor'] + r['output']):.2f}x")
    print("\nFC speed ratios (same run):\n" + "\n".join(f"- {line}" for line in goals))
    print("\n| collator input | samples/s |\n|---|---:|")
    for label, rate in bench_collator().items():
        print(f"| {label} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
