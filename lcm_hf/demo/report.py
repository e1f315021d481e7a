"""The demo's ``report.md`` / ``report.json``: LCM vs the logistic-regression baseline vs chance."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from ..training.recipes import jsonable
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


def _chance(bei: dict, labels: np.ndarray, index: int) -> float:
    known = labels[~np.isnan(labels[:, index]), index]
    return 1.0 / max(len(np.unique(known)), 1)


def write_report(settings, pretrained, finetuned, baseline, beis, splits, figures, timings, start) -> dict:
    test_labels = np.stack(splits["test"].with_format("numpy")["labels"]).astype(np.float64)
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
    verdicts = []
    for bei in finetune_beis:
        if bei["kind"] != "categorical":
            continue
        index = [b["name"] for b in beis].index(bei["name"])
        if len(np.unique(test_labels[~np.isnan(test_labels[:, index]), index])) < 2:
            continue  # a constant (pseudo-)label, e.g. task = rest: nothing to score
        chance = _chance(bei, test_labels, index)
        lcm = semi["test_metrics"].get(f"test_{bei['name']}/subject/balanced_accuracy")
        base = baseline.get(f"{bei['name']}/subject/balanced_accuracy")
        lcm_auc = semi["test_metrics"].get(f"test_{bei['name']}/subject/roc_auc")
        base_auc = baseline.get(f"{bei['name']}/subject/roc_auc")
        verdicts.append(
            {
                "bei": bei["name"],
                "new": bei["name"] in new_beis,
                "chance_balanced_accuracy": chance,
                "lcm_subject_balanced_accuracy": lcm,
                "baseline_subject_balanced_accuracy": base,
                "lcm_subject_roc_auc": lcm_auc,
                "baseline_subject_roc_auc": base_auc,
                "lcm_beats_chance": lcm is not None and lcm > chance,
                "lcm_at_least_matches_baseline": lcm is not None and base is not None and lcm >= base,
            }
        )
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
        "timings_s": timings,
        "figures": sorted(os.listdir(figures)),
    }
    with open(os.path.join(settings.output_dir, "report.json"), "w") as handle:
        json.dump(jsonable(report), handle, indent=1)
    with open(os.path.join(settings.output_dir, "report.md"), "w") as handle:
        handle.write(_markdown(settings, report, pretrain_beis, finetune_beis, models, verdicts, new_beis))
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
        "Everything below runs on the simulated demo cohort (`lcm_hf.data.demo`): no real subject is involved, and",
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
        "| BEI | new | chance | LCM subject bal. acc. | LR subject bal. acc. | LCM subject AUC | LR subject AUC | beats chance | >= baseline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v['bei']} | {'yes' if v['new'] else 'no'} | {_fmt(v['chance_balanced_accuracy'])} | "
            f"{_fmt(v['lcm_subject_balanced_accuracy'])} | {_fmt(v['baseline_subject_balanced_accuracy'])} | "
            f"{_fmt(v['lcm_subject_roc_auc'])} | {_fmt(v['baseline_subject_roc_auc'])} | "
            f"{'yes' if v['lcm_beats_chance'] else 'NO'} | {'yes' if v['lcm_at_least_matches_baseline'] else 'NO'} |"
        )
    lines.append("")
    for v in verdicts:
        if v["new"] and not v["lcm_at_least_matches_baseline"]:
            lines += [
                f"**Honest note:** on the new BEI `{v['bei']}` the finetuned LCM does not match the logistic-regression "
                "baseline here. The simulated effects are linear shifts of a few FC blocks, exactly what a regularised "
                "linear model on the FC upper triangle is built for, and this CPU-sized LCM (few layers, small width, "
                "a few hundred windows, minutes of training) has far less data and compute than the paper's models.",
                "",
            ]
        if not v["lcm_beats_chance"]:
            lines += [f"**Honest note:** the finetuned LCM does not beat chance on `{v['bei']}`.", ""]
    lines += [
        "BEIs whose test labels hold one class (the declared pseudo-label `task = rest`) get no verdict. Age is "
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
        "  true-class probability is highest (the paper's best-matched readout layer), with the selected layer in orange.",
        "",
        "All metrics (per layer, per dataset) are in `report.json` and each run's `results.json`; TensorBoard logs are",
        "under each run's `runs/` folder (`tensorboard --logdir runs/demo`).",
        "",
    ]
    return "\n".join(lines)


__all__ = ["write_report"]
