"""``cv_results.json`` and ``cv_report.md`` of a ``--cv_folds`` run (:mod:`lcm_hf.training.cross_validation`).

The verdicts come from the fold values, not from the pooled out-of-fold predictions: pooling mixes fold models
with different calibrations and thresholds (a pooled AUC can sit far from every fold's), so per BEI and metric
the per-fold differences (LCM - baseline, LCM - chance) are averaged and given a 95% corrected resampled
t-interval over the folds (Nadeau & Bengio 2003: variance factor 1/K + n_test/n_train = 1/K + 1/(K-1), as fold
training sets overlap), :data:`VERDICT_METHOD`. A verdict is drawn only where the pooled test subjects number at
least ``MIN_SUBJECTS`` with ``MIN_CLASS_SUBJECTS`` of every class, and never per fold. The pooled values are
shown beside the fold mean +/- sd.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .evaluation import MIN_CLASS_SUBJECTS, MIN_SUBJECTS, verdict
from .report import (
    METRIC_NAMES,
    _fmt,
    _with_ci,
    comparison_lines,
    history_sentences,
    level_sentence,
    unscored_lines,
)

SERIES = ("lcm", "baseline", "chance", "difference")
VERDICT_METHOD = ("mean over folds of the per-fold difference, with a 95% corrected resampled t-interval over "
                  "folds (Nadeau & Bengio 2003)")


def fold_interval(values: list[float | None], folds: int) -> dict:
    """Mean, sd and 95% corrected resampled t-interval of per-fold values (None where a fold has none).

    The variance of the mean is ``sd^2 * (1/k + 1/(K - 1))`` (k folds with a value, K folds in all: a fold's
    test / training subjects is 1/(K-1)), with Student's t on k - 1 degrees of freedom; ``ci`` is None with
    fewer than 2 values.
    """
    from scipy.stats import t

    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    out = {"folds": values, "mean": float(finite.mean()) if finite.size else None,
           "sd": float(finite.std(ddof=1)) if finite.size > 1 else None, "ci": None}
    if finite.size > 1:
        half = t.ppf(0.975, finite.size - 1) * out["sd"] * math.sqrt(1.0 / finite.size + 1.0 / max(folds - 1, 1))
        out["ci"] = [out["mean"] - half, out["mean"] + half]
    return out


def pooled_test_counts(fold_counts: list[dict]) -> dict[str, dict[str, int]]:
    """``{bei: {class: test subjects}}`` summed over the folds' ``class_counts`` (each subject is tested once)."""
    total: dict = {}
    for counts in fold_counts:
        for bei, splits in (counts or {}).items():
            for name, n in (splits.get("test") or {}).items():
                total.setdefault(bei, {})[name] = total.setdefault(bei, {}).get(name, 0) + n
    return total


def fold_verdicts(table: dict, folds: int, test_counts: dict) -> dict:
    """Per BEI and metric: the across-fold intervals of LCM - chance and LCM - baseline and their verdicts.

    ``table`` is :func:`mean_sd`'s; ``test_counts`` the pooled test subjects per class of each categorical BEI.
    No verdict (``"too few test subjects to tell"``) with fewer than ``MIN_SUBJECTS`` pooled test subjects or
    ``MIN_CLASS_SUBJECTS`` of a class.
    """
    out: dict = {}
    for bei, metrics in table.items():
        counts = test_counts.get(bei)
        enough = counts is None or (sum(counts.values()) >= MIN_SUBJECTS and len(counts) > 1
                                    and min(counts.values()) >= MIN_CLASS_SUBJECTS)
        for metric, cell in metrics.items():
            higher = metric != "mae"
            lcm, chance = cell["lcm"]["folds"], cell["chance"]["folds"]
            above = [None if a is None or c is None else a - c for a, c in zip(lcm, chance)]
            entry = {"method": VERDICT_METHOD, "lcm_minus_chance": fold_interval(above, folds),
                     "difference": fold_interval(cell["difference"]["folds"], folds)}
            chance_ci = entry["lcm_minus_chance"]["ci"] if enough else None
            entry["verdict_chance"] = verdict(chance_ci, higher, "chance")
            if any(v is not None for v in cell["difference"]["folds"]):
                entry["verdict"] = verdict(entry["difference"]["ci"] if enough else None, higher, "the baseline")
            out.setdefault(bei, {})[metric] = entry
    return out


def _value(entry, key):
    item = entry.get(key)
    value = item.get("value") if isinstance(item, dict) else None
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def mean_sd(fold_rows: list[list[dict]]) -> dict:
    """Per BEI and metric, per series (lcm, baseline, chance, difference): folds' values, mean and sd (ddof 1)."""
    table: dict = {}
    for fold, rows in enumerate(fold_rows):
        for row in rows:
            for metric, entry in row["metrics"].items():
                cell = table.setdefault(row["bei"], {}).setdefault(metric, {s: [None] * len(fold_rows) for s in SERIES})
                for series in SERIES:
                    cell[series][fold] = _value(entry, series)
    out = {}
    for bei, metrics in table.items():
        for metric, cell in metrics.items():
            summary = {}
            for series, values in cell.items():
                finite = [v for v in values if v is not None]
                summary[series] = {
                    "folds": values,
                    "mean": float(np.mean(finite)) if finite else None,
                    "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
                }
            out.setdefault(bei, {})[metric] = summary
    return out


def summarise(description: dict, levels: dict, pooled: list | None, fold_results: list[dict],
              eval_level: str = "auto") -> dict:
    """The JSON-able content of ``cv_results.json``."""
    from .recipes import jsonable

    fold_rows = [(r.get("evaluation") or {}).get("comparison", []) for r in fold_results]
    folds = []
    for index, result in enumerate(fold_results):
        metrics = result.get("test_metrics") or {}
        folds.append({
            "fold": index,
            "subjects": description["subjects"][index],
            "comparison": fold_rows[index],
            "unscored": (result.get("evaluation") or {}).get("unscored", {}),
            "class_counts": (result.get("evaluation") or {}).get("class_counts", {}),
            "test_metrics": {k: v for k, v in metrics.items() if "/layer_" not in k and "dataset/" not in k},
            "history": history_sentences(result.get("log_history") or [], result.get("best_model_checkpoint"),
                                         bool(result.get("kept_best")),
                                         (result.get("model_selection") or {}).get("metric")),
        })
    test_metrics = {}
    for key in folds[0]["test_metrics"] if folds else []:
        values = [f["test_metrics"].get(key) for f in folds]
        finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if finite:
            test_metrics[key] = {"mean": float(np.mean(finite)),
                                 "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None}
    table = mean_sd(fold_rows)
    verdicts = fold_verdicts(table, len(fold_results), pooled_test_counts(
        [(r.get("evaluation") or {}).get("class_counts") for r in fold_results]))
    for row in pooled or []:  # the pooled rows carry the across-fold verdicts, not a pooled bootstrap's
        for metric, entry in row["metrics"].items():
            across = verdicts.get(row["bei"], {}).get(metric)
            if across:
                entry["verdict_chance"] = across["verdict_chance"]
                if "verdict" in entry or "verdict" in across:
                    entry["verdict"] = across.get("verdict", "no baseline")
                entry["verdict_from"] = "folds"
    return jsonable({
        "description": description,
        "eval_level": eval_level,
        "levels": levels,
        "pooled": pooled,
        "folds": folds,
        "mean_sd": table,
        "verdicts": verdicts,
        "verdict_method": VERDICT_METHOD,
        "optimistic": optimistic_sentence(fold_results),
        "small_cohort_policy": next((r["small_cohort_policy"] for r in fold_results if r.get("small_cohort_policy")),
                                    None),
        "test_metrics_mean_sd": test_metrics,
        "init": [r.get("init") for r in fold_results] if any(r.get("init_guard") for r in fold_results) else None,
    })


def optimistic_sentence(fold_results: list[dict]) -> str | None:
    """"optimistic: the starting model saw N of M test subjects" summed over the folds (``--allow_subject_overlap``),
    or None when no fold's starting model saw a test subject."""
    counts = [(r.get("subject_overlap") or {}).get("test") for r in fold_results]
    counts = [c for c in counts if c]
    if not counts or not sum(c[0] for c in counts):
        return None
    return f"optimistic: the starting model saw {sum(c[0] for c in counts)} of {sum(c[1] for c in counts)} test subjects"


def _mean_sd(cell) -> str:
    if not cell or cell.get("mean") is None:
        return "n/a"
    return _fmt(cell["mean"]) + ("" if cell.get("sd") is None else f" ± {_fmt(cell['sd'])}")


def _difference_cell(entry) -> str:
    if not entry or entry.get("mean") is None:
        return "n/a"
    ci = entry.get("ci")
    text = _fmt(entry["mean"]) + ("" if entry.get("sd") is None else f" ± {_fmt(entry['sd'])}")
    return text + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def verdict_lines(cv: dict) -> list[str]:
    """The across-fold table: fold mean ± sd beside the pooled value, the difference's interval over folds, and
    the verdicts (:func:`fold_verdicts`)."""
    pooled = {(row["bei"], metric): entry for row in cv.get("pooled") or [] for metric, entry in row["metrics"].items()}
    lines = ["| BEI | metric | LCM fold mean ± sd | LCM pooled [95% CI] | baseline fold mean ± sd | "
             "baseline pooled [95% CI] | chance | LCM - baseline fold mean ± sd [95% CI] | LCM vs baseline | "
             "LCM vs chance |", "|---|---|---|---|---|---|---|---|---|---|"]
    for bei, metrics in cv["mean_sd"].items():
        for metric, cell in metrics.items():
            across = (cv.get("verdicts") or {}).get(bei, {}).get(metric, {})
            entry = pooled.get((bei, metric), {})
            arrow = "" if metric != "mae" else " (lower is better)"
            lines.append(
                f"| {bei} | {METRIC_NAMES.get(metric, metric)}{arrow} | {_mean_sd(cell.get('lcm'))} | "
                f"{_with_ci(entry.get('lcm'))} | {_mean_sd(cell.get('baseline'))} | {_with_ci(entry.get('baseline'))} | "
                f"{_mean_sd(cell.get('chance'))} | {_difference_cell(across.get('difference'))} | "
                f"{across.get('verdict', 'no baseline')} | {across.get('verdict_chance', 'n/a')} |")
    return lines


def markdown(cv: dict) -> str:
    from .report import notice_lines
    from .stratification import class_count_lines, too_few_lines

    d = cv["description"]
    stratified = {k: v for k, v in d["stratified_by"].items() if v}
    how = "the first categorical target, by default" if d.get("stratify_default") else "--stratify_column"
    lines = [
        "# Cross-validation report",
        "",
        *notice_lines(cv),
        f"{d['folds']} folds grouped by `{d['group_by']}` (no {d['group_by']} in two splits of a fold), shuffled "
        f"with seed {d['seed']}, " + (f"stratified by {stratified} ({how})." if stratified else "not stratified.")
        + " In each fold the validation split is carved out of the training subjects; each fold's model, "
        "`results.json` and `report.md` are in `fold-<k>/`.",
        "",
        "Subjects per fold (train / validation / test): "
        + "; ".join(f"fold {i}: {s['train']} / {s['validation']} / {s['test']}" for i, s in enumerate(d["subjects"]))
        + ".",
    ]
    pooled_counts = pooled_test_counts([fold.get("class_counts") for fold in cv["folds"]])
    if pooled_counts:
        lines.append("Test subjects per class, all folds: " + "; ".join(
            f"{bei} " + ", ".join(f"{name} {n}" for name, n in classes.items())
            for bei, classes in pooled_counts.items()) + ".")
    held = {k: v for k, v in d["held_out_test_rows"].items() if v}
    if held:
        lines.append(f"Published test splits are left out of the folds (rows): {held}; score them with a run "
                     "without --cv_folds.")
    scored = {row["bei"]: row["level"] for row in cv.get("pooled") or []}
    lines += ["", level_sentence(scored, cv.get("eval_level", "auto")), ""]
    unscored = (cv["folds"][0].get("unscored") or {}) if cv["folds"] else {}
    lines += unscored_lines({k: v for k, v in unscored.items() if k not in scored})
    lines += ["## Mean ± sd over folds, and the verdicts", "",
              f"Verdicts: {cv.get('verdict_method', VERDICT_METHOD)}; each fold's model is scored on its own test "
              "subjects, so no verdict mixes fold models. \"Beats\" only when the interval excludes 0. No verdict "
              f"with fewer than {MIN_SUBJECTS} test subjects in all, or fewer than {MIN_CLASS_SUBJECTS} of a class, "
              "and none per fold.", ""]
    lines += verdict_lines(cv) + [""]
    if cv.get("pooled"):
        n = max((row["subjects"] for row in cv["pooled"]), default=0)
        lines += [
            f"## All folds pooled: out-of-fold predictions ({n} subjects)",
            "",
            "Every subject is scored once, by the fold whose model never saw it; the pooled values mix fold models "
            "(their calibrations and thresholds differ), so they are shown for reference and the verdicts above "
            "come from the folds. Intervals: 95% percentile bootstrap over the pooled subjects.",
            "",
        ]
        lines += comparison_lines(cv["pooled"], verdicts=False) + [""]
    lines += ["## Per fold", "", f"Values only: no intervals or verdicts from one fold's "
              f"~{min((s['test'] for s in d['subjects']), default=0)} test subjects.", ""]
    for fold in cv["folds"]:
        lines += [f"### Fold {fold['fold']}", "", *fold["history"], ""]
        counts = fold.get("class_counts") or {}
        lines += class_count_lines(counts) + too_few_lines(counts)
        if fold["comparison"]:
            lines += comparison_lines(fold["comparison"], verdicts=False, intervals=False) + [""]
    return "\n".join(lines)


def cv_summary(cv: dict) -> dict:
    """The headline of a CV run (what the scripts print): folds, levels, and per BEI and metric the fold means
    and the pooled LCM, baseline and chance values with the across-fold verdicts (and ``optimistic`` when the
    starting model saw test subjects)."""
    table = cv.get("mean_sd") or {}
    pooled = {
        row["bei"]: {
            metric: {
                "lcm_fold_mean": table.get(row["bei"], {}).get(metric, {}).get("lcm", {}).get("mean"),
                "baseline_fold_mean": table.get(row["bei"], {}).get(metric, {}).get("baseline", {}).get("mean"),
                "lcm": entry["lcm"]["value"],
                "baseline": (entry.get("baseline") or {}).get("value"),
                "chance": entry["chance"]["value"],
                "verdict": entry.get("verdict"),
                "verdict_chance": entry["verdict_chance"],
            }
            for metric, entry in row["metrics"].items()
        }
        for row in cv.get("pooled") or []
    }
    summary = {"cv_folds": cv["description"]["folds"], "levels": cv["levels"], "pooled": pooled}
    if cv.get("init"):  # the initialisation guard's choice per fold (lcm_hf.training.init_guard)
        summary["init"] = cv["init"]
    if cv.get("optimistic"):
        summary["optimistic"] = cv["optimistic"]
    return summary


def write_cv_report(output_dir: str, cv: dict) -> tuple[str, str]:
    """Write ``cv_results.json`` and ``cv_report.md`` (atomically) into ``output_dir``."""
    from ..atomic import atomic_write_json, atomic_write_text

    json_path, md_path = os.path.join(output_dir, "cv_results.json"), os.path.join(output_dir, "cv_report.md")
    atomic_write_json(json_path, cv, indent=1)
    atomic_write_text(md_path, markdown(cv))
    return json_path, md_path


__all__ = ["VERDICT_METHOD", "cv_summary", "fold_interval", "fold_verdicts", "markdown", "mean_sd", "optimistic_sentence",
           "pooled_test_counts", "summarise", "verdict_lines", "write_cv_report"]
