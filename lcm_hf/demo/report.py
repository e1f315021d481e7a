"""The demo's ``report.md`` / ``report.json``: LCM vs the logistic-regression baseline vs chance."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text, write_marker
from ..training.recipes import jsonable
from ..training.report import (
    comparison_lines,
    explanation_lines,
    history_sentences,
    level_sentence,
    unscored_lines,
)
from .figures import best_matched_layers, plot_layer_curves, plot_loss_curves, plot_readout_histogram

LEVELS = (("window", ""), ("subject", "subject/"))
CLASSIFICATION_COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc")
REGRESSION_COLUMNS = ("mae", "pearson_r")


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _metric_rows(name: str, metrics: dict, bei: dict, prefix: str = "") -> list[str]:
    columns = CLASSIFICATION_COLUMNS if bei["kind"] == "categorical" else REGRESSION_COLUMNS
    rows = []
    for level, infix in LEVELS:
        values = [metrics.get(f"{prefix}{bei['name']}/{infix}{column}") for column in columns]
        if all(v is None for v in values):
            continue
        rows.append(f"| {bei['name']} | {name} | {level} | " + " | ".join(_fmt(v) for v in values) + " |")
    return rows


def _bei_table(beis: list[dict], models: dict[str, tuple[dict, str]], kind: str) -> list[str]:
    columns = CLASSIFICATION_COLUMNS if kind == "categorical" else REGRESSION_COLUMNS
    lines = ["| BEI | model | level | " + " | ".join(columns) + " |", "|" + "---|" * (3 + len(columns))]
    for bei in beis:
        if bei["kind"] != kind:
            continue
        for name, (metrics, prefix) in models.items():
            lines += _metric_rows(name, metrics, bei, prefix)
    return lines


def write_report(settings, pretrained, finetuned, baseline, beis, splits, figures, timings, start) -> dict:
    from ..data.columns import column_array

    test_labels = column_array(splits["test"], "labels", np.float64)
    finetune_names = [
        b["name"]
        for b in beis
        if not np.isnan(test_labels[:, [x["name"] for x in beis].index(b["name"])]).all()
    ]
    finetune_beis = [b for b in beis if b["name"] in finetune_names]
    # BEIs with one class in the finetuning data (the pseudo-label task = rest) are not plotted.
    varying = [
        b
        for b in finetune_beis
        if b["kind"] != "categorical"
        or len(np.unique(test_labels[~np.isnan(test_labels[:, beis.index(b)]), beis.index(b)])) > 1
    ]
    semi = finetuned["semi_supervised"]
    new_beis = semi["new_beis"]
    pretrain_beis = _config_beis(settings, "pretrained")

    # Figures.
    runs = {
        "pretraining": {**pretrained, "beis": pretrain_beis, "momentum_epochs": settings.momentum_epochs},
        "finetuning (semi-supervised)": {
            **semi,
            "beis": varying,
            "momentum_epochs": settings.momentum_epochs,
        },
    }
    plot_loss_curves(runs, os.path.join(figures, "loss_curves.png"))
    plot_layer_curves(runs, os.path.join(figures, "layer_metrics.png"))
    prediction = semi["test_predictions"]
    layer_logits = prediction.predictions[1]
    matched = best_matched_layers(layer_logits, prediction.label_ids, beis)
    matched = {k: v for k, v in matched.items() if k in [b["name"] for b in varying]}
    plot_readout_histogram(
        matched,
        semi["readout_layers"],
        layer_logits.shape[1],
        os.path.join(figures, "readout_layers.png"),
        "Best-matched readout layer per test window\n(finetuned LCM; orange: layer selected on validation)",
    )
    pre_prediction = pretrained["test_predictions"]
    pre_matched = best_matched_layers(pre_prediction.predictions[1], pre_prediction.label_ids, pretrain_beis)
    plot_readout_histogram(
        pre_matched,
        pretrained["readout_layers"],
        pre_prediction.predictions[1].shape[1],
        os.path.join(figures, "readout_layers_pretraining.png"),
        "Best-matched readout layer per test window\n(pretrained LCM; orange: selected layer)",
    )

    models = {
        "LCM semi-supervised finetuning": (semi["test_metrics"], "test_"),
        "LCM linear probe": (finetuned["linear_probe"]["test_metrics"], "test_"),
        "LCM from scratch": (finetuned["scratch"]["test_metrics"], "test_"),
        "logistic regression on FC (ridge for age)": (baseline, ""),
    }
    # Verdicts with bootstrap intervals over test subjects (lcm_hf.training.report: the same words everywhere).
    evaluation = semi.get("evaluation") or {}
    verdicts = [
        {**row, "new": row["bei"] in new_beis}
        for row in evaluation.get("comparison", [])
        if row["bei"] in [b["name"] for b in finetune_beis]
    ]
    timings["total_s"] = time.time() - start
    report = {
        "simulated_data": True,
        "settings": settings.__dict__,
        "split_sizes": {"pretraining": pretrained["split_sizes"], "finetuning": semi["split_sizes"]},
        "pretraining": {
            "test_metrics": pretrained["test_metrics"],
            "readout_layers": pretrained["readout_layers"],
            "stage_history": pretrained["stage_history"],
        },
        "finetuning": {
            mode: {
                "test_metrics": r["test_metrics"],
                "readout_layers": r["readout_layers"],
                "trainable": r.get("trainable"),
            }
            for mode, r in finetuned.items()
        },
        "baseline": baseline,
        "verdicts": verdicts,
        "unscored": {k: v for k, v in (evaluation.get("unscored") or {}).items()
                     if k in [b["name"] for b in beis]},
        "finetuning_history": history_sentences(
            semi.get("log_history") or [], semi.get("best_model_checkpoint"), bool(semi.get("kept_best")),
            (semi.get("model_selection") or {}).get("metric"),
        ),
        "timings_s": timings,
        "figures": sorted(os.listdir(figures)),
    }
    # Complete or absent: each file goes to a temporary sibling, then is renamed into place.
    atomic_write_json(os.path.join(settings.output_dir, "report.json"), jsonable(report), indent=1)
    atomic_write_text(
        os.path.join(settings.output_dir, "report.md"),
        _markdown(settings, report, pretrain_beis, finetune_beis, models, verdicts, new_beis),
    )
    write_marker(settings.output_dir, "report")
    print(
        f"[demo] wrote {os.path.join(settings.output_dir, 'report.md')} in {timings['total_s']:.0f} s",
        flush=True,
    )
    return report


def _config_beis(settings, name):
    with open(os.path.join(settings.output_dir, name, "config.json")) as handle:
        return json.load(handle)["beis"]


def _markdown(settings, report, pretrain_beis, finetune_beis, models, verdicts, new_beis) -> str:
    t = report["timings_s"]
    lines = [
        "# LCM demo report (SIMULATED data)",
        "",
        "Everything below runs on the simulated demo cohort (`lcm_hf.demo`): no real subject is involved, and",
        "the numbers say whether the pipeline works, not how LCM does on real fMRI.",
        "",
        f"Model: {settings.num_hidden_layers} layers, hidden {settings.hidden_size}, readout policy `best_layer`, "
        f"{settings.momentum_epochs} momentum epochs; {settings.pretrain_epochs} pretraining and "
        f"{settings.finetune_epochs} finetuning epochs; windows of {settings.window_size} TRs (one window = one sample; "
        "subject level = window probabilities averaged per subject). Splits are by subject.",
        f"Split sizes (windows): pretraining {report['split_sizes']['pretraining']}, "
        f"finetuning {report['split_sizes']['finetuning']}.",
        "",
        f"Wall time: {t['total_s']:.0f} s in total (pretraining {t['pretrain_s']:.0f} s, finetuning "
        + ", ".join(f"{k[9:-2]} {v:.0f} s" for k, v in t.items() if k.startswith("finetune_"))
        + f", baseline {t['baseline_s']:.1f} s), {settings.num_threads} torch thread(s).",
        "",
        "## Verdict on the finetuning dataset (ppmi_like, test subjects)",
        "",
        "Semi-supervised finetuned LCM vs the logistic-regression baseline vs chance, on the same test subjects. "
        + level_sentence({v["bei"]: v["level"] for v in verdicts}),
        "",
    ]
    lines += comparison_lines(verdicts) + [""] + explanation_lines() + [""]
    lines += ["Semi-supervised finetuning: " + " ".join(report["finetuning_history"]), ""]
    for v in verdicts:
        words = {m: e.get("verdict", "") for m, e in v["metrics"].items()}
        if v["new"] and any(w == "the baseline beats LCM" for w in words.values()):
            lines += [
                f"**Honest note:** on the new BEI `{v['bei']}` the logistic-regression baseline beats the finetuned "
                "LCM here. The simulated effects are linear shifts of a few FC blocks, exactly what a regularised "
                "linear model on the FC upper triangle is built for, and this CPU-sized LCM (few layers, small width, "
                "a few hundred windows, minutes of training) has far less data and compute than the paper's models.",
                "",
            ]
        elif v["new"] and any(w.startswith("no detectable") for w in words.values()):
            lines += [f"**Honest note:** on `{v['bei']}` the finetuned LCM and the baseline cannot be told apart on "
                      f"these {v['subjects']} test subjects (the interval of their difference covers 0).", ""]
        if not all(e["verdict_chance"] == "LCM beats chance" for e in v["metrics"].values()):
            lines += [f"**Honest note:** the finetuned LCM is not shown to beat chance on `{v['bei']}` by every metric "
                      "(see the intervals above).", ""]
    lines += unscored_lines(report["unscored"])
    lines += [
        "Age is "
        "predicted in years, standardised by the pooled mean and standard deviation during training "
        "(`--standardize_continuous`); compare its MAE and Pearson r with the ridge baseline below.",
        "",
        "## Finetuning: per-BEI test metrics (window and subject level)",
        "",
    ]
    lines += _bei_table(finetune_beis, models, "categorical") + [""]
    lines += _bei_table(finetune_beis, models, "continuous") + [""]
    lines += [
        "Modes: semi-supervised = the pretrained model with a new `parkinson` token, every BEI trained "
        "(task with its declared pseudo-label `rest`); linear probe = frozen model, only the new token's embedding "
        "and the shared readout train; from scratch = the same architecture randomly initialised.",
        "",
        "## Pretraining: per-BEI test metrics (all pretraining datasets)",
        "",
    ]
    pre = {"LCM pretrained": (report["pretraining"]["test_metrics"], "test_")}
    lines += (
        _bei_table(pretrain_beis, pre, "categorical")
        + [""]
        + _bei_table(pretrain_beis, pre, "continuous")
        + [""]
    )
    lines += [
        f"Selected readout layers (best_layer): pretraining {report['pretraining']['readout_layers']}, "
        f"finetuning {report['finetuning']['semi_supervised']['readout_layers']}.",
        "",
        "## Figures",
        "",
        "- `figures/loss_curves.png`: training and validation loss per epoch (dashed: stage 1 -> 2).",
        "- `figures/layer_metrics.png`: validation balanced accuracy of every layer and of the readout per epoch.",
        "- `figures/readout_layers.png`, `figures/readout_layers_pretraining.png`: per test window, the layer whose",
        "  true-class logit is highest (the paper's best-matched readout layer), with the selected layer in orange.",
        "",
        "How to read the loss curves: a validation loss that climbs while the training loss falls means the model",
        "memorises the training subjects; the report above says which epoch's model was kept.",
        "",
        "How to read the readout-layer histograms: each bar is the share of test windows whose true class is read",
        "best at that layer, so a tall orange bar means the layer chosen on validation is also the best one for most",
        "test windows, and bars spread over several layers mean no single layer is best for every window.",
        "",
        "BEIs without labels (or with one class only) in the finetuning data are left out of the figures, not drawn "
        "as blank panels: " + (", ".join(f"`{k}` ({v})" for k, v in report["unscored"].items()) or "none") + ".",
        "",
        "All metrics (per layer, per dataset) are in `report.json` and each run's `results.json`; TensorBoard logs are",
        "under each run's `runs/` folder (`tensorboard --logdir runs/demo`).",
        "",
    ]
    return "\n".join(lines)


__all__ = ["write_report"]
