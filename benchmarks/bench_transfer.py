"""Pretraining, measured: when it helps a small cohort, by how much, and the finetuning mode that gets it.

Protocol (``python benchmarks/bench_transfer.py``; ``--quick`` for a smoke run of under 3 minutes):

- **Data**: SIMULATED, with a known answer (:class:`lcm_hf.data.simulation.TransferWorld`): pretraining datasets
  whose BEIs load on a few shared FC factors, and downstream cohorts (a new dataset) with a new BEI ``target`` that
  loads on the shared factors (positive control) or on factors no pretraining BEI touches (negative control).
- **Pretraining**: :func:`lcm_hf.training.recipes.pretrain` (what ``training/pretrain.py`` runs) on 1k and 5k
  subjects, the same tiny model for both.
- **Finetuning**: for each downstream size (40, 120, 400 subjects), seed (a new cohort draw, fold shuffle and
  model initialisation) and fold of a subject-grouped, stratified K-fold CV (one scan per subject), every
  finetuning mode of the package is built by :func:`lcm_hf.training.recipes.guarded_finetuning_model` (what
  ``training/finetune.py`` runs, after the size-aware small-cohort policy as there) and trained by
  :class:`LcmTrainer` with the finetuning defaults (:class:`FinetuneTrainingArguments`): ``default`` (what
  ``finetune.py`` runs without options: ``semi_supervised`` behind the initialisation guard of
  :mod:`lcm_hf.training.init_guard`, which trains from scratch where an inner 3-fold CV on the training subjects
  finds scratch better), and unguarded ``full_finetune`` (``semi_supervised``, no pseudo-labels),
  ``semi_supervised`` (+ confident pseudo-labels of the pretrained BEIs, threshold 0.9), ``lora`` and
  ``linear_probe``, against ``scratch`` (same architecture, random init) and the FC + logistic regression
  baseline (:func:`lcm_hf.training.baseline.fit_baseline`). 20% of each outer training fold (stratified) is the
  validation set of the LCM runs (with fewer than 20 validation subjects the small-cohort policy trains on it
  too, without selection); the baseline fits the whole outer training fold. Every method sees the same folds.
- **Score**: subject-level ROC-AUC of ``target`` on the test fold; per cell the mean over seeds x folds with a
  95% interval from the spread of the per-seed means (t, seeds - 1 degrees of freedom), and paired differences.

Writes ``--out`` (JSON with every run), the figure ``--figure`` (AUC against downstream size per method) and,
with ``--results``, the markdown of ``RESULTS_transfer.md``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
import warnings

import numpy as np
import torch

WORLD = dict(num_rois=24, num_networks=6, num_shared_factors=4, num_private_factors=4, num_pretraining_datasets=6,
             beis_per_dataset=2, sites_per_dataset=3, sigma_factor=0.2, noise_sd=0.2, seed=0)
MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
PRETRAIN = dict(num_train_epochs=10, per_device_train_batch_size=32, learning_rate=3e-3)
FINETUNE = dict(num_train_epochs=10.0, early_stopping_patience=None)  # FinetuneTrainingArguments' defaults
MODES = {  # name -> LcmFinetuneArguments fields
    "default": dict(),  # what training/finetune.py runs without options: semi_supervised behind the guard
    "full_finetune": dict(mode="semi_supervised", init_guard_folds=0),
    "semi_supervised": dict(mode="semi_supervised", confident_pseudo_label_threshold=0.9, init_guard_folds=0),
    "lora": dict(mode="semi_supervised", use_lora=True, init_guard_folds=0),
    "linear_probe": dict(mode="linear_probe", init_guard_folds=0),
    "scratch": dict(mode="scratch"),
}
PRETRAINED_MODES = [name for name in MODES if name != "scratch"]


def _quiet():
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore")


def _common_training(output_dir: str, seed: int) -> dict:
    return dict(output_dir=output_dir, seed=seed, report_to="none", disable_tqdm=True, use_cpu=True,
                calibrate=False, save_total_limit=1, save_only_model=True, logging_strategy="no")


# ----------------------------------------------------------------------------- pretraining
def pretrain_corpus(world, num_subjects: int, output_dir: str, epochs: float) -> dict:
    """Pretrain the tiny model on `num_subjects` simulated subjects with `recipes.pretrain`; its test metrics."""
    from lcm_hf.training.arguments import LcmDataArguments, LcmModelArguments, LcmTrainingArguments
    from lcm_hf.training.recipes import pretrain

    corpus = world.pretraining_corpus(num_subjects, seed=0)
    data_args = LcmDataArguments(categorical_columns=world.pretraining_beis, baseline=False,
                                 validation_fraction=0.1, test_fraction=0.1)
    model_args = LcmModelArguments(**MODEL)
    training_args = LcmTrainingArguments(**{**_common_training(output_dir, 0), **PRETRAIN, "num_train_epochs": epochs})
    start = time.time()
    results = pretrain(corpus.datasets, data_args, model_args, training_args)
    return {**pretraining_summary(world, results["test_metrics"]), "subjects": num_subjects,
            "seconds": time.time() - start, "epochs": epochs}


def pretraining_summary(world, test_metrics: dict) -> dict:
    """Mean and range over the pretraining BEIs of their subject-level test ROC-AUC (pretraining's test split)."""
    aucs = [test_metrics[f"test_{bei}/subject/roc_auc"] for bei in world.pretraining_beis
            if f"test_{bei}/subject/roc_auc" in test_metrics]
    aucs = [value for value in aucs if value is not None and not math.isnan(value)]  # one-class test sets: no AUC
    if not aucs:
        return {"test_subject_auc_mean": None}
    return {"test_subject_auc_mean": float(np.mean(aucs)), "test_subject_auc_min": float(np.min(aucs)),
            "test_subject_auc_max": float(np.max(aucs))}


# ----------------------------------------------------------------------------- folds
def cohort_folds(labels: np.ndarray, folds: int, seed: int):
    """(outer_train, fit, validation, test) index arrays: stratified K-fold over subjects, and 20% of each outer
    training set (stratified) as validation."""
    from sklearn.model_selection import StratifiedKFold

    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for outer_train, test in outer.split(np.zeros(len(labels)), labels):
        inner = StratifiedKFold(5, shuffle=True, random_state=seed + 1000)
        fit, validation = next(inner.split(np.zeros(len(outer_train)), labels[outer_train]))
        yield outer_train, outer_train[fit], outer_train[validation], test


def target_auc(logits: np.ndarray, labels: np.ndarray, beis: list[dict]) -> float:
    """Subject-level ROC-AUC of ``target`` (one window per subject) from (n, P) logits and (n, K) labels."""
    from sklearn.metrics import roc_auc_score

    from lcm_hf.configuration_lcm import bei_token_slices
    from lcm_hf.data.simulation import TARGET

    names = [bei["name"] for bei in beis]
    token_slice = bei_token_slices(beis)[names.index(TARGET)]
    scores = torch.from_numpy(np.asarray(logits[:, token_slice], dtype=np.float64)).softmax(-1)[:, 1].numpy()
    truth = labels[:, names.index(TARGET)]
    return float(roc_auc_score(truth, scores)) if len(np.unique(truth)) == 2 else float("nan")


# ----------------------------------------------------------------------------- one fold
def finetune_run(mode: str, model_dir: str, prepared, seed: int, work: str, finetune_settings: dict) -> dict:
    """Finetune with `mode` on the prepared fold (the package's finetuning model + LcmTrainer); test AUC."""
    from lcm_hf.data import LcmDataCollator
    from lcm_hf.training.arguments import FinetuneTrainingArguments, LcmFinetuneArguments
    from lcm_hf.training.recipes import finetuning_arguments, guarded_finetuning_model
    from lcm_hf.training.small_cohort import apply_small_cohort_policy
    from lcm_hf.training.trainer import LcmTrainer, numpy_predictions

    finetune_args = LcmFinetuneArguments(model_name_or_path=model_dir, new_beis=["target"], **MODES[mode])
    settings = {**_common_training(os.path.join(work, mode), seed), **finetune_settings}
    training_args = finetuning_arguments(finetune_args, FinetuneTrainingArguments(**settings))
    start = time.time()
    # as recipes.finetune: the size-aware policy (too few validation subjects: no selection, train + validation)
    splits, training_args, policy = apply_small_cohort_policy(dict(prepared.splits), training_args)
    model, splits, _, _, guard = guarded_finetuning_model(finetune_args, prepared.vocabulary, splits, training_args)
    trainer = LcmTrainer(model=model, args=training_args, train_dataset=splits["train"],
                         eval_dataset=splits["validation"], data_collator=LcmDataCollator(beis=model.config.beis),
                         layer_metrics=False)
    trainer.train()
    prediction = trainer.predict(splits["test"])
    logits, _ = numpy_predictions(prediction)
    beis = model.config.beis
    return {"auc": target_auc(logits, np.asarray(prediction.label_ids), beis), "seconds": time.time() - start,
            "epochs": float(trainer.state.epoch or 0), "init": guard["choice"], "small_cohort_policy": bool(policy),
            "guard": {k: guard.get(k) for k in ("pretrained_mean", "scratch_mean")} if guard["choice"] else None}


def baseline_run(prepared, seed: int) -> dict:
    """FC + logistic regression on the outer training fold (train + validation), scored on the test fold."""
    from datasets import concatenate_datasets

    from lcm_hf.training.baseline import fit_baseline

    splits = prepared.splits
    beis = prepared.vocabulary.to_config()  # the pretrained BEIs have no labels here: only `target` is fitted
    outer_train = concatenate_datasets([splits["train"], splits["validation"]])
    start = time.time()
    fit = fit_baseline({"train": outer_train, "test": splits["test"]}, beis, seed=seed)
    labels = np.stack(splits["test"].with_format("numpy", columns=["labels"])[:]["labels"])
    return {"auc": target_auc(fit.logits, labels, beis), "seconds": time.time() - start}


def prepare_fold(cohort, control: str, parts: tuple, model_dir: str):
    """The package's finetuning data of one fold (`prepare_finetuning_data` with the fold as published splits)."""
    from datasets import DatasetDict

    from lcm_hf.data.simulation import TARGET
    from lcm_hf.training.arguments import LcmDataArguments
    from lcm_hf.training.recipes import prepare_finetuning_data

    _, fit, validation, test = parts
    dataset = cohort.datasets[control]
    folds = DatasetDict({"train": dataset.select(fit), "validation": dataset.select(validation),
                         "test": dataset.select(test)})
    return prepare_finetuning_data({control: folds}, LcmDataArguments(baseline=False), model_dir, [TARGET])


# ----------------------------------------------------------------------------- study
def study(world, model_dirs: dict, sizes: list[int], seeds: list[int], folds: int, finetune_settings: dict,
          modes: dict, controls: list[str], log, scratch: bool = True, save=None) -> list[dict]:
    """Every (control, size, seed, fold): the baseline, scratch and `modes` ``{pretraining size: [mode...]}``."""
    from lcm_hf.data.simulation import TARGET

    runs = []
    reference_dir = next(iter(model_dirs.values()))  # every pretrained model has the same size and vocabulary
    with tempfile.TemporaryDirectory() as work:
        for seed in seeds:  # seed-major: a run cut short still has whole seeds at every size
            for size in sizes:
                for control in controls:
                    cohort = world.downstream_cohort(size, control, seed=seed)
                    labels = np.array([value == "pos" for value in cohort.datasets[control][TARGET]], dtype=int)
                    for fold, parts in enumerate(cohort_folds(labels, folds, seed)):
                        start = time.time()
                        key = {"control": control, "size": size, "seed": seed, "fold": fold}
                        prepared = prepare_fold(cohort, control, parts, reference_dir)
                        runs.append({**key, "method": "baseline", "pretrain": None, **baseline_run(prepared, seed)})
                        if scratch:
                            result = finetune_run("scratch", reference_dir, prepared, seed, work, finetune_settings)
                            runs.append({**key, "method": "scratch", "pretrain": None, **result})
                        for pretrain_size, model_dir in model_dirs.items():  # one vocabulary: one preparation
                            for mode in modes[pretrain_size]:
                                result = finetune_run(mode, model_dir, prepared, seed, work, finetune_settings)
                                runs.append({**key, "method": mode, "pretrain": pretrain_size, **result})
                        done = [r for r in runs if all(r[k] == v for k, v in key.items())]
                        log(f"{control} n={size} seed {seed} fold {fold} ({time.time() - start:.0f}s): " + ", ".join(
                            f"{r['method']}{'' if r['pretrain'] is None else '@' + str(r['pretrain'])} "
                            f"{r['auc']:.2f}" + (f" [{r['init']} start]" if r.get("init") else "") for r in done))
                        if save is not None:
                            save(runs)
    return runs


# ----------------------------------------------------------------------------- summary
def _label(run_or_method, pretrain=None) -> str:
    if isinstance(run_or_method, dict):
        run_or_method, pretrain = run_or_method["method"], run_or_method["pretrain"]
    return run_or_method if pretrain is None else f"{run_or_method} ({pretrain / 1000:g}k)"


def summarise(values_by_seed: dict) -> tuple[float, float, float]:
    """(mean over all runs, 95% interval low, high) from the per-seed means (t interval over seeds)."""
    from scipy import stats

    seed_means = np.array([np.nanmean(v) for v in values_by_seed.values()])
    every = np.concatenate([np.asarray(v, dtype=float) for v in values_by_seed.values()])
    mean = float(np.nanmean(every))
    if len(seed_means) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(seed_means) - 1) * seed_means.std(ddof=1) / math.sqrt(len(seed_means))
    return mean, mean - half, mean + half


def cells(runs: list[dict]) -> dict:
    """{(control, size, label): {seed: [auc per fold]}}."""
    table = {}
    for run in runs:
        table.setdefault((run["control"], run["size"], _label(run)), {}).setdefault(run["seed"], []).append(run["auc"])
    return table


def paired(runs: list[dict], label: str, reference: str, control: str, size: int) -> dict:
    """{seed: [auc(label) - auc(reference) per fold]} on the same folds."""
    by_key = {}
    for run in runs:
        if run["control"] == control and run["size"] == size:
            by_key.setdefault(_label(run), {})[(run["seed"], run["fold"])] = run["auc"]
    out = {}
    for (seed, fold), value in by_key.get(label, {}).items():
        if (seed, fold) in by_key.get(reference, {}):
            out.setdefault(seed, []).append(value - by_key[reference][(seed, fold)])
    return out


def _fmt(summary) -> str:
    mean, low, high = summary
    if math.isnan(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def labels_in_order(runs: list[dict]) -> list[str]:
    order = ["baseline", "scratch"] + [f"{mode} ({k})" for k in ("1k", "5k") for mode in PRETRAINED_MODES]
    present = dict.fromkeys(_label(r) for r in runs)
    return [label for label in order if label in present] + [label for label in present if label not in order]


def auc_table(runs: list[dict]) -> str:
    sizes = sorted({r["size"] for r in runs})
    table = cells(runs)
    lines = []
    for control in dict.fromkeys(r["control"] for r in runs):
        lines += [f"\n**{control} control** (test ROC-AUC of `target`, subject level; mean [95% interval])\n",
                  "| method | " + " | ".join(f"n={s}" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for label in labels_in_order(runs):
            row = [(_fmt(summarise(table[(control, s, label)])) if (control, s, label) in table else "") for s in sizes]
            lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def difference_table(runs: list[dict], reference: str) -> str:
    sizes = sorted({r["size"] for r in runs})
    lines = []
    for control in dict.fromkeys(r["control"] for r in runs):
        lines += [f"\n**{control} control**: method - {reference}, paired on the same folds\n",
                  "| method | " + " | ".join(f"n={s}" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for label in labels_in_order(runs):
            if label == reference:
                continue
            row = []
            for size in sizes:
                values = paired(runs, label, reference, control, size)
                row.append(_fmt(summarise(values)) if values else "")
            lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def goals(runs: list[dict]) -> list[str]:
    """The issue's goals, checked on this run's figures (fold mean over seeds)."""
    table = {key: float(np.nanmean(np.concatenate([np.asarray(v) for v in seeds.values()])))
             for key, seeds in cells(runs).items()}
    lines = []
    pretrained = [label for label in labels_in_order(runs) if label not in ("baseline", "scratch")]
    for size in (40, 120):
        if ("positive", size, "scratch") not in table:
            continue
        best = max(pretrained, key=lambda label: table.get(("positive", size, label), -1))
        value = table[("positive", size, best)]
        scratch, base = table[("positive", size, "scratch")], table[("positive", size, "baseline")]
        lines.append(f"- positive, n={size}: best pretrained {best} {value:.3f}; vs scratch {value - scratch:+.3f} "
                     f"(goal >= +0.05: {'met' if value - scratch >= 0.05 else 'NOT met'}); vs baseline "
                     f"{value - base:+.3f} (goal >= +0.03: {'met' if value - base >= 0.03 else 'NOT met'})")
    worst = []
    for (control, size, label), value in table.items():
        if control == "negative" and label not in ("baseline", "scratch") and ("negative", size, "scratch") in table:
            worst.append((value - table[("negative", size, "scratch")], label, size))
    if worst:
        gap, label, size = min(worst)
        lines.append(f"- negative control: lowest mode - scratch {gap:+.3f} ({label}, n={size}) (goal >= -0.02: "
                     f"{'met' if gap >= -0.02 else 'NOT met'}); modes below -0.02: "
                     + (", ".join(f"{lab} n={s} {g:+.3f}" for g, lab, s in sorted(worst) if g < -0.02) or "none"))
    for size in sorted({r["size"] for r in runs}):
        gains = {}
        for k in ("1k", "5k"):
            values = [table.get(("positive", size, f"{mode} ({k})")) for mode in PRETRAINED_MODES]
            values = [v for v in values if v is not None]
            if values and ("positive", size, "scratch") in table:
                gains[k] = max(values) - table[("positive", size, "scratch")]
        if len(gains) == 2:
            lines.append(f"- positive, n={size}: gain of the best mode over scratch, 1k {gains['1k']:+.3f} -> 5k "
                         f"{gains['5k']:+.3f} ({'grows' if gains['5k'] > gains['1k'] else 'does NOT grow'})")
    return lines


def figure(runs: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from lcm_hf.analysis.plots import save_figure

    sizes = sorted({r["size"] for r in runs})
    controls = list(dict.fromkeys(r["control"] for r in runs))
    table = cells(runs)
    fig, axes = plt.subplots(1, len(controls), figsize=(5.5 * len(controls), 4.2), sharey=True, squeeze=False)
    for ax, control in zip(axes[0], controls):
        for label in labels_in_order(runs):
            points = [(s, summarise(table[(control, s, label)])) for s in sizes if (control, s, label) in table]
            if not points:
                continue
            x = np.array([p[0] for p in points], dtype=float)
            mean = np.array([p[1][0] for p in points])
            low = np.array([p[1][1] for p in points])
            high = np.array([p[1][2] for p in points])
            style = "--" if label in ("baseline", "scratch") else ("-" if "5k" in label else ":")
            line = ax.plot(x, mean, style, marker="o", label=label)[0]
            if not np.isnan(low).all():
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.05)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylim(0.3, 1.0)  # intervals over 3 seeds are wide: clipped here, in full in RESULTS_transfer.md
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("downstream cohort size (subjects)")
        ax.set_title(f"{control} control")
        ax.axhline(0.5, color="grey", lw=0.5)
    axes[0][0].set_ylabel("test ROC-AUC (subject level)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def report(runs: list[dict], settings: dict, figure_path: str | None) -> None:
    """Print the tables and goals of `runs`; draw the figure when `figure_path` is given."""
    if figure_path:
        figure(runs, figure_path, f"SIMULATED transfer study: mean and 95% interval over seeds; {settings['cpu']}")
    print(f"\n{len(runs)} runs in {settings['seconds']:.0f}s on {settings['cpu']} (1 thread per process)")
    print(auc_table(runs))
    print(difference_table(runs, "scratch"))
    print(difference_table(runs, "baseline"))
    print("\nGoals:\n" + "\n".join(goals(runs)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 + 600 pretraining subjects, a cohort of 40, 1 seed, 2 folds, short "
                             "training, the default (guarded) mode and full_finetune on the larger model and "
                             "full_finetune on the smaller (prints the table; writes nothing unless --out/--figure "
                             "are given)")
    parser.add_argument("--pretrain_sizes", nargs="+", type=int, default=[1000, 5000])
    parser.add_argument("--sizes", nargs="+", type=int, default=[40, 120, 400])
    parser.add_argument("--controls", nargs="+", default=["positive", "negative"], choices=["positive", "negative"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first_seed", type=int, default=0,
                        help="seeds first_seed .. seeds - 1 (several processes can share the seeds of one study)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--pretrain_epochs", nargs="+", type=float, default=None,
                        help="epochs per pretraining size (default: PRETRAIN's for every size)")
    parser.add_argument("--finetune_epochs", type=float, default=FINETUNE["num_train_epochs"])
    parser.add_argument("--patience", type=int, default=FINETUNE["early_stopping_patience"])
    parser.add_argument("--learning_rate", type=float, default=None,
                        help="finetuning learning rate of every mode (default: FinetuneTrainingArguments')")
    parser.add_argument("--modes", nargs="+", default=PRETRAINED_MODES, choices=PRETRAINED_MODES,
                        help="finetuning modes of the largest pretrained model")
    parser.add_argument("--modes_smaller", nargs="+", default=None, choices=PRETRAINED_MODES,
                        help="finetuning modes of the smaller pretrained models (default: --modes)")
    parser.add_argument("--no_scratch", action="store_true", help="skip the from-scratch runs")
    parser.add_argument("--model_cache", default=None,
                        help="keep the pretrained models in this folder and reuse them when present (several "
                             "processes can then share one pretraining)")
    parser.add_argument("--out", default=None, help="JSON of every run")
    parser.add_argument("--figure", default=None, help="the figure (png), e.g. benchmarks/figures/transfer_auc.png")
    parser.add_argument("--report", nargs="+", default=None, metavar="JSON",
                        help="print the tables (and --figure) of saved runs (several files are pooled)")
    args = parser.parse_args(argv)
    if args.report:
        runs, settings, seen = [], None, set()
        for path in args.report:
            with open(path) as handle:
                saved = json.load(handle)
            for run in saved["runs"]:  # a run present in two files (processes sharing seeds) counts once
                key = tuple(run[k] for k in ("control", "size", "seed", "fold", "method", "pretrain"))
                if key not in seen:
                    seen.add(key)
                    runs.append(run)
            settings = settings or saved["settings"]
        settings["seconds"] = max(json.load(open(p))["settings"]["seconds"] for p in args.report)  # processes in parallel
        report(runs, settings, args.figure)
        return
    torch.set_num_threads(1)
    _quiet()
    from lcm_hf.data.simulation import TransferWorld

    if args.quick:
        args.pretrain_sizes, args.sizes, args.seeds, args.folds = [300, 600], [40], 1, 2
        args.pretrain_epochs, args.finetune_epochs, args.patience = [3, 3], 4, None
        args.modes = ["default", "full_finetune"] if args.modes == PRETRAINED_MODES else args.modes
        args.modes_smaller = args.modes_smaller or ["full_finetune"]
    epochs = args.pretrain_epochs or [PRETRAIN["num_train_epochs"]] * len(args.pretrain_sizes)
    if len(epochs) != len(args.pretrain_sizes):
        raise SystemExit(f"error: --pretrain_epochs: expected {len(args.pretrain_sizes)} values, got {len(epochs)}")
    world = TransferWorld(**WORLD)
    finetune_settings = {"num_train_epochs": args.finetune_epochs, "early_stopping_patience": args.patience}
    if args.learning_rate is not None:
        finetune_settings["learning_rate"] = args.learning_rate
    largest = max(args.pretrain_sizes)
    modes = {size: args.modes if size == largest else (args.modes_smaller or args.modes) for size in args.pretrain_sizes}
    start = time.time()
    log = lambda line: print(line, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as temporary:
        models = args.model_cache or temporary
        model_dirs, pretraining = {}, []
        for size, size_epochs in zip(args.pretrain_sizes, epochs):
            model_dirs[size] = os.path.join(models, f"pretrained-{size}-{size_epochs:g}ep")
            if os.path.isfile(os.path.join(model_dirs[size], "results.json")):
                with open(os.path.join(model_dirs[size], "results.json")) as handle:
                    saved = json.load(handle)["test_metrics"]
                pretraining.append({**pretraining_summary(world, saved), "subjects": size, "epochs": size_epochs,
                                    "reused": model_dirs[size]})
                log(f"reusing the model pretrained on {size} subjects: {pretraining[-1]}")
                continue
            pretraining.append(pretrain_corpus(world, size, model_dirs[size], size_epochs))
            log(f"pretrained on {size} subjects: {pretraining[-1]}")
        settings = {"world": WORLD, "model": MODEL, "pretrain": {**PRETRAIN, "num_train_epochs": epochs},
                    "finetune": finetune_settings, "pretrain_sizes": args.pretrain_sizes, "sizes": args.sizes,
                    "controls": args.controls, "modes": {str(k): v for k, v in modes.items()}, "seeds": args.seeds,
                    "folds": args.folds, "quick": args.quick, "cpu": cpu_model(),
                    "torch_threads": torch.get_num_threads()}

        def save(runs, complete=False):
            if not args.out:
                return
            temporary = f"{args.out}.tmp"
            with open(temporary, "w") as handle:
                json.dump({"settings": {**settings, "seconds": time.time() - start, "complete": complete},
                           "pretraining": pretraining, "runs": runs}, handle, indent=1)
            os.replace(temporary, args.out)

        runs = study(world, model_dirs, args.sizes, list(range(args.first_seed, args.seeds)), args.folds,
                     finetune_settings, modes, args.controls, log, scratch=not args.no_scratch, save=save)
    settings["seconds"] = time.time() - start
    save(runs, complete=True)
    report(runs, settings, args.figure)


if __name__ == "__main__":
    main()
