"""The main job, end to end on the SIMULATED demo cohort (`lcm-hf demo`, `make demo`): a user of the library.

1. Multitask pretraining on the three pretraining datasets (hcp_like, abide_like, adni_like) with the
   two-stage readout schedule (union vocabulary, declared pseudo-label ``task = rest``).
2. Finetuning on the held-back ppmi_like dataset, which brings a new BEI (``parkinson``), three ways on
   one subject-level split: semi-supervised (pretrained model + new BEI token, pretrained BEIs kept with
   true / pseudo-labels), linear probing (frozen model, only the new BEI token and readout train) and
   from scratch.
3. A logistic regression on the FC upper triangle (ridge regression for age), trained on the same training
   windows and scored on the same test subjects.
4. ``report.md`` + ``report.json`` + figures (loss curves, per-layer metric curves, readout-layer histogram).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

from ..configuration_lcm import DEFAULT_MOMENTUM_EPOCHS
from ..training.baseline import logistic_regression_baseline
from ..windows_lcm import DEFAULT_WINDOW_SIZE
from .report import write_report


@dataclass
class DemoSettings:
    output_dir: str = "runs/demo"
    seed: int = 0
    pretrain_epochs: int = 30
    finetune_epochs: int = 40
    momentum_epochs: int = DEFAULT_MOMENTUM_EPOCHS  # the config's (the paper's); the demo passes it explicitly
    window_size: int = DEFAULT_WINDOW_SIZE
    demo_subjects: int | None = None
    hidden_size: int = 64
    num_hidden_layers: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    num_threads: int | None = None  # None: the thread rule (lcm_hf.console.thread_policy)
    report_to: str = "tensorboard"


def _training_args(settings: DemoSettings, output_dir: str, epochs: int, batch_size: int):
    from ..training.arguments import LcmTrainingArguments

    report_to = settings.report_to
    if report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            report_to = "none"
    return LcmTrainingArguments(
        output_dir=output_dir,
        momentum_epochs=settings.momentum_epochs,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=128,
        learning_rate=settings.learning_rate,
        weight_decay=0.01,
        warmup_steps=10,
        eval_strategy="epoch",
        save_strategy="epoch",  # with load_best_model_at_end: keep the best validation epoch, not the last
        save_total_limit=1,
        load_best_model_at_end=True,
        logging_strategy="epoch",
        report_to=report_to,
        seed=settings.seed,
        use_cpu=True,
        dataloader_num_workers=0,
        small_cohort_policy="off",  # the demo shows selection, best_layer and calibration at work, even in --quick
    )


def run_demo(settings: DemoSettings | None = None) -> dict:
    """Run the whole demo; returns the report dict (also written as report.json)."""
    from transformers.utils import logging as hf_logging

    from ..console import configure_threads
    from ..training.arguments import LcmDataArguments, LcmFinetuneArguments, LcmModelArguments
    from ..training.recipes import finetune, prepare_finetuning_data, pretrain
    from ..training.runtime import quiet_libraries
    from .inputs import apply_demo_defaults, demo_datasets

    settings = settings or DemoSettings()
    settings.num_threads = configure_threads(settings.num_threads, flag="--num-threads")  # says it in one line
    hf_logging.set_verbosity_warning()
    quiet_libraries()  # one progress bar per stage, one line per evaluation
    os.makedirs(settings.output_dir, exist_ok=True)
    figures = os.path.join(settings.output_dir, "figures")
    os.makedirs(figures, exist_ok=True)
    timings = {}
    start = time.time()

    # 1. Multitask pretraining.
    def demo_data_arguments(**overrides):
        return LcmDataArguments(demo=True, demo_seed=settings.seed, demo_subjects=settings.demo_subjects,
                                window_size=settings.window_size, split_seed=settings.seed, **overrides)

    # the report compares on the finetuning data; pretraining's report.md: LCM vs chance
    data_args = demo_data_arguments(baseline=False)
    datasets = demo_datasets("pretrain", data_args)
    apply_demo_defaults(data_args, datasets)
    model_args = LcmModelArguments(
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.num_hidden_layers,
        intermediate_size=2 * settings.hidden_size,
        readout_policy="best_layer",
    )
    pretrain_dir = os.path.join(settings.output_dir, "pretrained")
    print(f"[demo] 1/3 multitask pretraining on {' + '.join(datasets)} -> {pretrain_dir}", flush=True)
    pretrained = pretrain(
        datasets,
        data_args,
        model_args,
        _training_args(settings, pretrain_dir, settings.pretrain_epochs, settings.batch_size),
    )
    timings["pretrain_s"] = time.time() - start

    # 2. Finetuning three ways on one split of the held-back dataset.
    finetune_data = demo_data_arguments(test_fraction=0.25)  # ~30 test subjects of 120: less noisy than 18
    finetune_datasets = demo_datasets("finetune", finetune_data)
    apply_demo_defaults(finetune_data, finetune_datasets)
    prepared = prepare_finetuning_data(finetune_datasets, finetune_data, pretrain_dir)
    vocabulary, splits = prepared.vocabulary, prepared.splits
    beis = vocabulary.to_config()
    finetuned = {}
    for mode in ("semi_supervised", "linear_probe", "scratch"):
        mode_start = time.time()
        print(f"[demo] 2/3 finetuning on {' + '.join(finetune_datasets)} ({mode})", flush=True)
        # init_guard_folds=0: the demo compares the modes as named (the guard would train some from scratch)
        args = LcmFinetuneArguments(model_name_or_path=pretrain_dir, mode=mode, init_guard_folds=0)
        training_args = _training_args(
            settings, os.path.join(settings.output_dir, f"finetuned-{mode}"), settings.finetune_epochs, 16
        )
        if mode == "linear_probe":
            training_args.learning_rate = settings.learning_rate * 5
        finetuned[mode] = finetune(
            None, finetune_data, args, training_args, prepared=prepared._replace(splits=copy.copy(splits))
        )
        timings[f"finetune_{mode}_s"] = time.time() - mode_start

    # 3. Baseline on the same split.
    print("[demo] 3/3 logistic regression on FC (same split) and report", flush=True)
    baseline_start = time.time()
    baseline, _ = logistic_regression_baseline(splits, beis, settings.seed)
    timings["baseline_s"] = time.time() - baseline_start

    report = write_report(settings, pretrained, finetuned, baseline, beis, splits, figures, timings, start)
    return report


__all__ = ["DemoSettings", "run_demo"]
