"""The process a training script runs in: torch threads, a real (or refused) multi-process launch, flag conflicts.

- torch threads: `lcm_hf.console.configure_threads` (the one thread rule: ``--num_threads``, else
  ``OMP_NUM_THREADS``, else the CPUs available to the process divided by the processes on this machine and
  reduced to the CPUs a busy machine leaves free) set in torch (one inter-op thread), said in one line.
- :func:`check_launch`: several processes launched (``WORLD_SIZE`` > 1) that are not connected in one
  distributed run (e.g. ``accelerate launch --multi_gpu`` on a machine without GPUs, no ``--use_cpu``) stop
  with a message saying how to launch on CPU, instead of training twice into one folder.
- :func:`check_flag_conflicts`: flags that cannot work together are refused before any data is read.
- :func:`run_recipe`: a recipe run once or, with ``--cv_folds K``, on every fold, and its one-line JSON summary
  (which says the readout schedule that ran).
"""

from __future__ import annotations

import os

from ..console import configure_threads
from ..errors_lcm import LcmInputError

CPU_LAUNCH_HINT = (
    "on CPU add --use_cpu to the script's flags: `accelerate launch --config_file "
    "training/accelerate_configs/cpu_2proc.yaml training/<script>.py --use_cpu ...`"
)


def check_launch(training_args) -> None:
    """Refuse several launched processes that are not one distributed run (each would train alone and all
    would write the same output folder)."""
    try:
        launched = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        launched = 1
    if launched > 1 and training_args.world_size == 1:
        raise SystemExit(
            f"error: {launched} processes were launched (WORLD_SIZE={launched}) but they are not connected in one "
            f"distributed run (no GPU for --multi_gpu): each would train alone into one --output_dir; "
            f"{CPU_LAUNCH_HINT}"
        )


def check_flag_conflicts(data_args, finetune_args=None) -> None:
    """Flags that cannot work together, refused before any data is read (one ``ValueError`` naming both)."""
    if getattr(data_args, "demo", False) and data_args.dataset_dirs:
        raise LcmInputError(
            f"--demo and --dataset_dirs: expected one data source, got both (--dataset_dirs {data_args.dataset_dirs}); "
            "drop --demo to train on your folders"
        )
    if not getattr(data_args, "demo", False):
        demo_only = [flag for flag in ("demo_subjects", "demo_datasets") if getattr(data_args, flag, None)]
        if demo_only:
            raise LcmInputError(f"--{demo_only[0]}: expected with --demo (the simulated cohort), got no --demo")
    if finetune_args is None:
        return
    if finetune_args.use_lora and finetune_args.mode != "semi_supervised":
        raise LcmInputError(f"--use_lora: expected --mode semi_supervised, got --mode {finetune_args.mode}")
    if finetune_args.confident_pseudo_label_threshold is not None:
        if finetune_args.mode != "semi_supervised":
            raise LcmInputError(
                f"--confident_pseudo_label_threshold: expected --mode semi_supervised, got --mode {finetune_args.mode}"
            )
        if not 0 < finetune_args.confident_pseudo_label_threshold <= 1:
            raise LcmInputError(
                "--confident_pseudo_label_threshold: expected a probability in (0, 1], got "
                f"{finetune_args.confident_pseudo_label_threshold}"
            )


NOISE = ("mtime may not be reliable",)  # library log lines that tell a user nothing


class _DropNoise:
    def filter(self, record) -> bool:
        return not any(text in record.getMessage() for text in NOISE)


def quiet_libraries() -> None:
    """One progress bar per stage: no `datasets` map / cast / shard bars, no `transformers` shard-writing bars,
    no library log lines that say nothing to a user. The Trainer's own bar (`LcmProgressCallback`) stays."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    for handler in hf_logging.get_logger().handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())


def check_run_output(training_args, data_args, finetune_args=None) -> None:
    """Refuse an ``--output_dir`` that would write over the run's inputs (a ``--dataset_dirs`` folder, the
    ``--model_name_or_path`` finetuned, a folder holding or inside one), a dataset folder, or an unwritable place
    (`lcm_hf.atomic.check_training_output`), before any data is read."""
    from ..atomic import check_training_output

    inputs = list(getattr(data_args, "dataset_dirs", None) or [])
    if finetune_args is not None:
        inputs.append(getattr(finetune_args, "model_name_or_path", None))
    check_training_output(training_args.output_dir, inputs=inputs, flag="--output_dir")


def prepare_run(training_args, data_args, finetune_args=None) -> int:
    """Everything a training script checks and sets before reading data: flag conflicts, the output folder, the
    launch, threads, no ``pin_memory`` without an accelerator. Returns the torch thread count."""
    check_flag_conflicts(data_args, finetune_args)
    check_run_output(training_args, data_args, finetune_args)
    check_launch(training_args)
    threads = configure_threads(getattr(training_args, "num_threads", None), announce=training_args.should_log)
    quiet_libraries()
    return threads


def run_recipe(datasets, data_args, training_args, train, resume=None, headline=None) -> dict:
    """Run a recipe once (from ``resume``) or, with ``--cv_folds K``, on every fold (``cross_validate``), and
    print its one-line JSON summary on the main process.

    Parameters
    ----------
    datasets : dict
        ``{name: Dataset | DatasetDict}``.
    data_args, training_args
        The script's options.
    train : callable
        ``train(datasets, training_args, resume_from_checkpoint=None) -> results`` (a recipe).
    resume : str or bool, optional
        ``--resume_from_checkpoint`` (a single run only).
    headline : callable, optional
        ``results -> dict``: the summary's leading fields of a single run (its test metrics follow).

    Returns
    -------
    dict
        The recipe's results, or ``cv_results.json``'s content with ``--cv_folds``.
    """
    import json

    if data_args.cv_folds:  # K subject-grouped folds -> <output_dir>/fold-<k>, cv_report.md, cv_results.json
        from .cross_validation import cross_validate
        from .cv_report import cv_summary

        results = cross_validate(datasets, data_args, training_args, train)
        summary = cv_summary
    else:
        results = train(datasets, training_args, resume_from_checkpoint=resume)

        def summary(results):
            test = {k: v for k, v in results["test_metrics"].items() if "/layer_" not in k and "dataset/" not in k}
            marked = {"optimistic": results["optimistic"]} if results.get("optimistic") else {}
            return {**(headline(results) if headline else {}), "schedule": results.get("schedule"), **marked, "test": test}

    if training_args.should_log:
        print(json.dumps(summary(results), default=str))
    return results


__all__ = [
    "CPU_LAUNCH_HINT",
    "check_flag_conflicts",
    "check_launch",
    "check_run_output",
    "prepare_run",
    "quiet_libraries",
    "run_recipe",
]
