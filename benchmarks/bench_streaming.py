"""Streaming vs in-memory pretraining data: start-up time, samples/s and peak RSS as the corpus grows.

Writes simulated corpora (cheap random time series, NOT the demo simulator; ``sex`` / ``age`` phenotypes) as
sharded parquet folders in the `publish_dataset` layout, then measures, for each corpus and each data path, in
a fresh subprocess:

- **in-memory**: what ``training/pretrain.py`` does without ``--streaming``: `load_connectome_datasets` + subject
  splits + windows + FC precomputed for every window (`build_splits`), then batches from a shuffled DataLoader;
- **streaming**: what ``--streaming true`` does: `StreamSources` (vocabulary from the BEI columns, held-out
  subjects materialised) and a `WindowStream` (windows cut on the fly, FC in the collator).

Per corpus, each path runs in its own subprocess for its ``start-up`` (s, from the measurement's start to its
first batch, imports excluded), ``loader`` (samples/s of batches alone, batch 32) and ``peak RSS`` (MiB: the
VmHWM of the measuring process plus that of its DataLoader worker, if any: an upper bound, since the forked
worker shares pages with it); streaming is measured with 0 workers (one process: exact RSS) and with its default
``--stream_workers``. Then one more subprocess times train steps of one tiny LCM (hidden 64, 2 layers, small
enough for the data path to show) fed by in-memory batches (0 workers, the Trainer's default; and 1 worker) and
by streamed batches (1 worker), in alternating blocks of steps, so that load drifts on a shared machine hit
every path alike; the ratios come from that one process. The held-out sets are 2 x min(50, 5% of the smallest
corpus) subjects, the same at every size: the held-out set is materialised by design, the question here is
whether the *training* data's memory grows with the corpus. Corpora are written in shards of 125 subjects, and a
stream reads min(shards, 8) of them at once (`MAX_LANES`): its memory grows up to 8 shards (1,000 subjects),
then stays flat.

Usage:
    python benchmarks/bench_streaming.py            # corpora of 1k, 5k, 20k subjects
    python benchmarks/bench_streaming.py --quick    # 200, 500, 1000 subjects (< 3 minutes)

Corpora go to ``--workdir`` (default: a temporary folder) and are deleted afterwards, with the ``datasets``
cache the in-memory path writes. The table is printed and written to ``--output`` (default: the full run to
``benchmarks/RESULTS_streaming.md``, so that a ``--quick`` check never replaces it; ``--output ""`` to skip). A
benchmark, not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROIS = 116
TIMEPOINTS = 120
WINDOW = 60
BATCH = 32
HELD_OUT = 50  # subjects per held-out split (at most 5% of the smallest corpus), the same for every corpus
ROWS_PER_SHARD = 125


def write_corpus(folder: Path, subjects: int, dtype: str = "float16", seed: int = 0) -> float:
    """A published-layout folder of `subjects` random scans (T=120, N=116) in shards of 125 rows; returns MiB."""
    import numpy as np
    from datasets import Array2D, Dataset

    from lcm_hf.data import connectome_features, publish_dataset
    from lcm_hf.data.publishing import write_parquet_shard

    features = connectome_features(ROIS, {"sex": "string", "age": "float32"})
    features["timeseries"] = Array2D(shape=(None, ROIS), dtype=dtype)
    rng = np.random.default_rng(seed)
    shards = -(-subjects // ROWS_PER_SHARD)

    def rows(start, stop):
        n = stop - start
        return {
            "subject_id": [f"sub-{i:06d}" for i in range(start, stop)],
            "dataset": ["simulated"] * n,
            "site": [f"site{i % 4}" for i in range(start, stop)],
            "timeseries": rng.standard_normal((n, TIMEPOINTS, ROIS), dtype=np.float32).astype(dtype),
            "sex": list(rng.choice(["F", "M"], n)),
            "age": rng.uniform(20, 80, n).astype(np.float32).tolist(),
        }

    publish_dataset(Dataset.from_dict(rows(0, 1), features=features), folder, overwrite=True)  # the card
    for path in (folder / "data").glob("*.parquet"):
        path.unlink()
    for index in range(shards):
        start, stop = index * ROWS_PER_SHARD, min(subjects, (index + 1) * ROWS_PER_SHARD)
        shard = Dataset.from_dict(rows(start, stop), features=features)
        write_parquet_shard(shard, folder / "data" / f"train-{index:05d}-of-{shards:05d}.parquet")
    return sum(p.stat().st_size for p in (folder / "data").glob("*.parquet")) / 2**20


def peak_rss_mib(pid="self") -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def make_loader(mode: str, folder: str, fraction: float, workers: int):
    """The training DataLoader of one data path over `folder` (and the BEI vocabulary)."""
    import torch

    from lcm_hf.data import LcmDataCollator, union_vocabulary
    from lcm_hf.training.arguments import LcmDataArguments
    from lcm_hf.training.data import build_splits

    data_args = LcmDataArguments(dataset_dirs=[folder], categorical_columns=["sex"], continuous_columns=["age"],
                                 window_size=WINDOW, validation_fraction=fraction, test_fraction=fraction)
    if mode == "in-memory":
        from lcm_hf.training.data import load_connectome_datasets, split_parts
        from lcm_hf.training.recipes import _pooled

        parts = split_parts(load_connectome_datasets([folder]), data_args)
        vocabulary = union_vocabulary(_pooled(parts), ["sex"], ["age"], {}, True)
        splits = build_splits(parts, vocabulary, data_args, {})
        loader = torch.utils.data.DataLoader(splits["train"], batch_size=BATCH, shuffle=True,
                                             collate_fn=LcmDataCollator(), drop_last=True, num_workers=workers)
        return loader, vocabulary
    from lcm_hf.training.streaming import StreamCollator, StreamSources, WindowStream

    sources = StreamSources([folder], data_args)
    vocabulary = union_vocabulary(sources.phenotypes(["sex", "age"]), ["sex"], ["age"], {}, True)
    build_splits(sources.held_out(), vocabulary, data_args, {})
    stream = WindowStream(sources.train_scans(), WINDOW, keep=sources.is_training)
    loader = torch.utils.data.DataLoader(stream, batch_size=BATCH, num_workers=workers,
                                         collate_fn=StreamCollator(LcmDataCollator(vocabulary)))
    return loader, vocabulary


class Feed:
    """Endless batches of a DataLoader (a new epoch when one ends), remembering its workers' peak RSS."""

    def __init__(self, loader):
        self.loader, self.iterator, self.worker_peaks = loader, iter(loader), {}

    def __next__(self):
        try:
            return next(self.iterator)
        except StopIteration:  # an in-memory epoch ended: its workers stop
            self.worker_peaks.update(loader_worker_peaks(self.iterator))
            self.iterator = iter(self.loader)
            return next(self.iterator)

    def peak_rss_mib(self) -> float:
        """This process's peak RSS plus its loader worker's."""
        self.worker_peaks.update(loader_worker_peaks(self.iterator))
        return peak_rss_mib() + max(self.worker_peaks.values(), default=0.0)


def tiny_model(vocabulary):
    """The LCM the train steps time (hidden 64, 2 layers: small enough for the data path to show) + AdamW."""
    import torch

    from lcm_hf import LcmConfig, LcmForBeiPrediction

    torch.manual_seed(0)
    config = LcmConfig(num_rois=ROIS, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=128, beis=vocabulary.to_config())
    model = LcmForBeiPrediction(config)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4)


def train_step(model, optimizer, batch) -> None:
    model(connectivity=batch["connectivity"], labels=batch["labels"]).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def worker(mode: str, folder: str, fraction: float, steps: int, workers: int) -> dict:
    """Start-up, loader samples/s and peak RSS of one data path (run in a subprocess: its peak RSS is its own,
    plus its loader worker's)."""
    import lcm_hf.training.recipes  # noqa: F401  (imports are not start-up)
    import lcm_hf.training.streaming  # noqa: F401

    start = time.perf_counter()
    loader, _ = make_loader(mode, folder, fraction, workers)
    feed = Feed(loader)
    next(feed)
    startup = time.perf_counter() - start
    tick = time.perf_counter()
    for _ in range(steps):
        next(feed)
    loader_rate = steps * BATCH / (time.perf_counter() - tick)
    return {"startup_s": startup, "loader_samples_s": loader_rate, "peak_rss_mib": feed.peak_rss_mib()}


def paired(folder: str, fraction: float, rounds: int, block: int) -> dict:
    """Train samples/s of the same tiny model fed by each data path, measured in one process in alternating
    blocks of `block` steps (`rounds` each), so that machine load drifts hit every path alike."""
    paths = {"in-memory": ("in-memory", 0), "in-memory, 1 worker": ("in-memory", 1),
             "streaming, 1 worker": ("streaming", 1)}
    feeds, vocabulary = {}, None
    for name, (mode, workers) in paths.items():
        loader, vocabulary = make_loader(mode, folder, fraction, workers)
        feeds[name] = Feed(loader)
    model, optimizer = tiny_model(vocabulary)
    for feed in feeds.values():  # warm-up: workers started, first batches decoded
        for _ in range(2):
            train_step(model, optimizer, next(feed))
    seconds = dict.fromkeys(feeds, 0.0)
    for _ in range(rounds):
        for name, feed in feeds.items():
            tick = time.perf_counter()
            for _ in range(block):
                train_step(model, optimizer, next(feed))
            seconds[name] += time.perf_counter() - tick
    return {name: rounds * block * BATCH / elapsed for name, elapsed in seconds.items()}


def loader_worker_peaks(iterator) -> dict:
    """``{pid: peak RSS MiB}`` of a DataLoader iterator's live worker processes (none without workers)."""
    return {w.pid: peak_rss_mib(w.pid) for w in getattr(iterator, "_workers", []) if w.is_alive()}


def default_stream_workers() -> int:
    from lcm_hf.training.arguments import LcmDataArguments

    return LcmDataArguments.__dataclass_fields__["stream_workers"].default


def torch_threads() -> str:
    """Torch threads of the measuring subprocesses: ``OMP_NUM_THREADS``, else 1 (small models run fastest so)."""
    return os.environ.get("OMP_NUM_THREADS", "1")


def in_subprocess(args: list[str], cache: Path) -> dict:
    """Run this script with `args` in a fresh process (its own peak RSS) and return the JSON it prints."""
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "OMP_NUM_THREADS": torch_threads()}
    completed = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True,
                               timeout=3600)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    shutil.rmtree(cache, ignore_errors=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def tables(rows: list[dict], trains: dict) -> str:
    lines = [
        "| subjects | parquet (MiB) | path | loader workers | start-up (s) | loader (samples/s) | peak RSS (MiB) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['subjects']:,} | {r['mib']:.0f} | {r['mode']} | {r['workers']} | {r['startup_s']:.1f} | "
                     f"{r['loader_samples_s']:.0f} | {r['peak_rss_mib']:.0f} |")
    names = list(next(iter(trains.values())))
    lines += ["", "Train samples/s of one tiny LCM fed by each path, in alternating blocks of steps in one process:", "",
              "| subjects | " + " | ".join(names) + " | streaming / in-memory | streaming / in-memory, 1 worker |",
              "|---:|" + "---:|" * (len(names) + 2)]
    for n, rates in trains.items():
        stream = rates["streaming, 1 worker"]
        lines.append(f"| {n:,} | " + " | ".join(f"{rates[k]:.0f}" for k in names) +
                     f" | {stream / rates['in-memory']:.2f}x | {stream / rates['in-memory, 1 worker']:.2f}x |")
    return "\n".join(lines)


def ratios(rows: list[dict], trains: dict) -> str:
    by = {(r["subjects"], r["mode"], r["workers"]): r for r in rows}
    sizes = sorted({r["subjects"] for r in rows})
    out = [f"- {n:,} subjects: streaming train samples/s = {rates['streaming, 1 worker'] / rates['in-memory']:.2f}x "
           f"in-memory (goal >= 0.9x)" for n, rates in trains.items()]
    for workers in sorted({r["workers"] for r in rows if r["mode"] == "streaming"}):
        small, large = by.get((sizes[0], "streaming", workers)), by.get((sizes[-1], "streaming", workers))
        if small and large:
            out.append(f"- streaming ({workers} loader workers) peak RSS at {sizes[-1]:,} subjects / at {sizes[0]:,}: "
                       f"{large['peak_rss_mib'] / small['peak_rss_mib']:.2f}x (goal: within 1.10x)")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="corpora of 200, 500, 1000 subjects (< 3 minutes)")
    parser.add_argument("--sizes", type=int, nargs="*", help="corpus sizes in subjects (overrides --quick)")
    parser.add_argument("--steps", type=int, default=None, help="batches timed per loader measurement")
    parser.add_argument("--rounds", type=int, default=None, help="alternating train blocks per data path")
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="stored time series")
    parser.add_argument("--workdir", default=None, help="where corpora are written (deleted afterwards)")
    parser.add_argument("--output", default=None,
                        help="where the table goes (default: RESULTS_streaming.md for the full run, none with --quick)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--paired", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        mode, folder, fraction, steps, workers = args.worker
        print(json.dumps(worker(mode, folder, float(fraction), int(steps), int(workers))))
        return
    if args.paired:
        folder, fraction, rounds, block = args.paired
        print(json.dumps(paired(folder, float(fraction), int(rounds), int(block))))
        return
    if args.output is None and not (args.quick or args.sizes):
        args.output = str(Path(__file__).with_name("RESULTS_streaming.md"))
    sizes = args.sizes or ([200, 500, 1000] if args.quick else [1000, 5000, 20000])
    steps = args.steps or (10 if args.quick else 40)
    rounds = args.rounds or (3 if args.quick else 6)
    block = 5
    root = Path(args.workdir or tempfile.mkdtemp(prefix="lcm_bench_streaming_"))
    root.mkdir(parents=True, exist_ok=True)
    rows, trains = [], {}
    began = time.perf_counter()
    try:
        held_out = min(HELD_OUT, max(2, round(0.05 * min(sizes))))  # subjects per held-out split, at every size
        for subjects in sizes:
            fraction = held_out / subjects
            folder = root / f"corpus_{subjects}"
            tick = time.perf_counter()
            mib = write_corpus(folder, subjects, args.dtype)
            print(f"corpus of {subjects:,} subjects: {mib:.0f} MiB of parquet in {time.perf_counter() - tick:.1f} s",
                  flush=True)
            for mode, workers in (("in-memory", 0), ("streaming", 0), ("streaming", default_stream_workers())):
                result = in_subprocess(["--worker", mode, str(folder), str(fraction), str(steps), str(workers)],
                                       root / "hf_cache")
                rows.append({"subjects": subjects, "mib": mib, "mode": mode, "workers": workers, **result})
                print(f"  {mode}, {workers} loader workers: {json.dumps({k: round(v, 2) for k, v in result.items()})}",
                      flush=True)
            trains[subjects] = in_subprocess(["--paired", str(folder), str(fraction), str(rounds), str(block)],
                                             root / "hf_cache")
            print(f"  train samples/s: {json.dumps({k: round(v) for k, v in trains[subjects].items()})}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = "\n\n".join([tables(rows, trains), ratios(rows, trains)])
    print(report)
    if args.output:
        header = (
            f"# Streaming vs in-memory data ({'--quick' if args.quick and not args.sizes else 'full run'})\n\n"
            f"`python benchmarks/bench_streaming.py{' --quick' if args.quick else ''}` on {platform.machine()}, "
            f"{os.cpu_count()} CPU cores (shared), torch threads {torch_threads()}; "
            f"time series {args.dtype}, T={TIMEPOINTS}, N={ROIS}, windows of {WINDOW} TRs, batch {BATCH}, "
            f"{steps} loader batches timed, {rounds} x {block} train steps per path; "
            f"{time.perf_counter() - began:.0f} s in all.\n\n"
        )
        path = Path(args.output)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(header + report + "\n", encoding="utf-8")
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
