"""``cv_results.json`` and ``cv_report.md`` of a ``--cv_folds`` run (:mod:`lcm_hf.training.cross_validation`)."""

from __future__ import annotations

import math
import os

import numpy as np

from .report import (
    METRIC_NAMES,
    _fmt,
    comparison_lines,
    explanation_lines,
    history_sentences,
    level_sentence,
    unscored_lines,
)

SERIES = ("lcm", "baseline", "chance", "difference")


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
    return jsonable({
        "description": description,
        "eval_level": eval_level,
        "levels": levels,
        "pooled": pooled,
        "folds": folds,
        "mean_sd": mean_sd(fold_rows),
        "test_metrics_mean_sd": test_metrics,
    })


def _mean_sd(cell) -> str:
    if not cell or cell.get("mean") is None:
        return "n/a"
    return _fmt(cell["mean"]) + ("" if cell.get("sd") is None else f" ± {_fmt(cell['sd'])}")


def markdown(cv: dict) -> str:
    d = cv["description"]
    stratified = {k: v for k, v in d["stratified_by"].items() if v}
    lines = [
        "# Cross-validation report",
        "",
        f"{d['folds']} folds grouped by `{d['group_by']}` (no {d['group_by']} in two splits of a fold), shuffled "
        f"with seed {d['seed']}, " + (f"stratified by {stratified}." if stratified else "not stratified.")
        + " In each fold the validation split is carved out of the training subjects; each fold's model, "
        "`results.json` and `report.md` are in `fold-<k>/`.",
        "",
        "Subjects per fold (train / validation / test): "
        + "; ".join(f"fold {i}: {s['train']} / {s['validation']} / {s['test']}" for i, s in enumerate(d["subjects"]))
        + ".",
    ]
    held = {k: v for k, v in d["held_out_test_rows"].items() if v}
    if held:
        lines.append(f"Published test splits are left out of the folds (rows): {held}; score them with a run "
                     "without --cv_folds.")
    scored = {row["bei"]: row["level"] for row in cv.get("pooled") or []}
    lines += ["", level_sentence(scored, cv.get("eval_level", "auto")), ""]
    unscored = (cv["folds"][0].get("unscored") or {}) if cv["folds"] else {}
    lines += unscored_lines({k: v for k, v in unscored.items() if k not in scored})
    if cv.get("pooled"):
        n = max((row["subjects"] for row in cv["pooled"]), default=0)
        lines += [
            f"## All folds pooled: out-of-fold predictions ({n} subjects)",
            "",
            "Every subject is scored once, by the fold whose model never saw it. The verdicts come from these "
            "intervals.",
            "",
        ]
        lines += comparison_lines(cv["pooled"]) + [""] + explanation_lines() + [""]
    lines += ["## Mean ± sd over folds", "",
              "| BEI | metric | LCM | baseline | chance | LCM - baseline |", "|---|---|---|---|---|---|"]
    for bei, metrics in cv["mean_sd"].items():
        for metric, cell in metrics.items():
            lines.append(f"| {bei} | {METRIC_NAMES.get(metric, metric)} | "
                         + " | ".join(_mean_sd(cell.get(s)) for s in ("lcm", "baseline", "chance", "difference"))
                         + " |")
    lines += ["", "## Per fold", ""]
    for fold in cv["folds"]:
        lines += [f"### Fold {fold['fold']}", "", *fold["history"], ""]
        if fold["comparison"]:
            lines += comparison_lines(fold["comparison"]) + [""]
    return "\n".join(lines)


def cv_summary(cv: dict) -> dict:
    """The headline of a CV run (what the scripts print): folds, levels, and per BEI and metric the pooled
    LCM, baseline and chance values with the verdicts."""
    pooled = {
        row["bei"]: {
            metric: {
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
    return {"cv_folds": cv["description"]["folds"], "levels": cv["levels"], "pooled": pooled}


def write_cv_report(output_dir: str, cv: dict) -> tuple[str, str]:
    """Write ``cv_results.json`` and ``cv_report.md`` (atomically) into ``output_dir``."""
    from ..atomic import atomic_write_json, atomic_write_text

    json_path, md_path = os.path.join(output_dir, "cv_results.json"), os.path.join(output_dir, "cv_report.md")
    atomic_write_json(json_path, cv, indent=1)
    atomic_write_text(md_path, markdown(cv))
    return json_path, md_path


__all__ = ["cv_summary", "mean_sd", "markdown", "summarise", "write_cv_report"]
