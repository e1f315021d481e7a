"""The process a training script runs in: torch threads, a real (or refused) multi-process launch, flag conflicts.

- :func:`thread_policy` (the one thread rule), :func:`prepare_thread_environment` (passive OpenMP waiting, set
  before torch loads) and :func:`configure_threads`: ``--num_threads``, else ``OMP_NUM_THREADS``, else the CPUs
  available to the process divided by the processes on this machine and reduced to the CPUs a busy machine
  leaves free; set in torch, said in one line.
- :func:`check_launch`: several processes launched (``WORLD_SIZE`` > 1) that are not connected in one
  distributed run (e.g. ``accelerate launch --multi_gpu`` on a machine without GPUs, no ``--use_cpu``) stop
  with a message saying how to launch on CPU, instead of training twice into one folder.
- :func:`check_flag_conflicts`: flags that cannot work together are refused before any data is read.
- :func:`run_recipe`: a recipe run once or, with ``--cv_folds K``, on every fold, and its one-line JSON summary
  (which says the readout schedule that ran).
"""

from __future__ import annotations

import math
import os
import sys
from typing import NamedTuple

from ..errors_lcm import LcmInputError

CPU_LAUNCH_HINT = (
    "on CPU add --use_cpu to the script's flags: `accelerate launch --config_file "
    "training/accelerate_configs/cpu_2proc.yaml training/<script>.py --use_cpu ...`"
)


# OpenMP's waiting between parallel regions: set by the user (any of these), else passive (sleep, don't spin).
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _local_world_size(environ=None) -> int:
    environ = os.environ if environ is None else environ
    for name in ("LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        try:
            return max(1, int(environ[name]))
        except (KeyError, ValueError):
            continue
    return 1


def available_cpus() -> int | None:
    """CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``); None when unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _runnable_now(samples: int = 5, interval: float = 0.02) -> float | None:
    """Runnable tasks on the machine now, this one excluded (``/proc/loadavg``'s 4th field; the median of a few
    reads); None where there is no such file."""
    import statistics
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as file:
                counts.append(int(file.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return float(statistics.median(counts))


def machine_load() -> float | None:
    """How many CPUs other work keeps busy: the larger of the machine's 1-minute load average and the tasks
    runnable now (the average lags by a minute behind jobs that just started); None where the OS has neither."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        average = None
    now = _runnable_now()
    known = [value for value in (average, now) if value is not None]
    return max(known) if known else None


def wait_environment(environ) -> dict:
    """``{"OMP_WAIT_POLICY": "PASSIVE"}`` unless ``environ`` sets one of :data:`WAIT_VARIABLES` (then ``{}``): idle
    OpenMP threads sleep instead of spinning on CPUs other processes need (torch's default spins a while)."""
    return {} if any(environ.get(name) for name in WAIT_VARIABLES) else {"OMP_WAIT_POLICY": "PASSIVE"}


class ThreadPolicy(NamedTuple):
    """The threads a process uses and why (:func:`thread_policy`).

    Attributes
    ----------
    threads : int
        torch intra-op threads per process (interop: 1).
    source : str
        Why, in words for the start line (``"--num_threads"``, ``"OMP_NUM_THREADS"``, ``"2 CPUs available, load
        1.3"``).
    env : dict
        Environment variables to set before torch (its OpenMP runtime) loads: ``OMP_WAIT_POLICY=PASSIVE`` unless
        the user set one of :data:`WAIT_VARIABLES`.
    """

    threads: int
    source: str
    env: dict


def thread_policy(num_threads: int | None = None, *, environ=None, cpus: int | None = None,
                  machine_cpus: int | None = None, load: float | None = None,
                  local_world_size: int | None = None) -> ThreadPolicy:
    """The one thread rule of every script and the demo (a pure function of what it is given).

    An explicit count wins: ``num_threads`` (``--num_threads``), else ``OMP_NUM_THREADS``. Otherwise the CPUs
    this process may use (``cpus``, ``os.sched_getaffinity``) divided by the processes on this machine, and, on a
    machine already busy, no more than the CPUs left free (``machine_cpus - load``, rounded, shared by the local
    processes), at least 1: threads that outnumber free CPUs wait for each other at every parallel region.

    Parameters
    ----------
    num_threads : int, optional
        The ``--num_threads`` flag.
    environ : mapping, optional
        The environment (default ``os.environ``): ``OMP_NUM_THREADS``, :data:`WAIT_VARIABLES`,
        ``LOCAL_WORLD_SIZE`` / ``WORLD_SIZE`` when ``local_world_size`` is None.
    cpus : int, optional
        CPUs this process may use (unknown: 1).
    machine_cpus : int, optional
        CPUs of the machine the load is counted on (default ``cpus``).
    load : float, optional
        The machine's 1-minute load average before this process starts working (None: not reduced).
    local_world_size : int, optional
        Processes of this run on this machine.

    Returns
    -------
    ThreadPolicy

    Raises
    ------
    LcmInputError
        ``num_threads`` below 1, or an ``OMP_NUM_THREADS`` that is not a positive whole number.
    """
    environ = os.environ if environ is None else environ
    env = wait_environment(environ)
    if num_threads is not None:
        if num_threads < 1:
            raise LcmInputError(f"--num_threads: expected a positive number of threads, got {num_threads}")
        return ThreadPolicy(num_threads, "--num_threads", env)
    explicit = environ.get("OMP_NUM_THREADS", "").strip()
    if explicit:
        first = explicit.split(",")[0].strip()  # OpenMP's nested list "4,2": the outer level
        if not first.isdigit() or int(first) < 1:
            raise LcmInputError(f"OMP_NUM_THREADS: expected a positive whole number of threads, got {explicit!r}; "
                                "unset it for the default")
        return ThreadPolicy(int(first), "OMP_NUM_THREADS", env)
    local = _local_world_size(environ) if local_world_size is None else max(1, local_world_size)
    threads = max(1, (cpus or 1) // local)
    source = f"{cpus or 'unknown'} CPUs available" + (f" / {local} processes" if local > 1 else "")
    if load is not None:
        free = (machine_cpus or cpus or 1) - load
        threads = min(threads, max(1, math.floor(free / local + 0.5)))
        source += f", load {load:.1f}"
    return ThreadPolicy(threads, source, env)


def current_thread_policy(num_threads: int | None = None) -> ThreadPolicy:
    """:func:`thread_policy` for this process now (its CPU affinity, the machine's load, ``os.environ``)."""
    explicit = num_threads is not None or os.environ.get("OMP_NUM_THREADS", "").strip()
    load = None if explicit else machine_load()  # read only when it decides (it samples for ~0.1 s)
    return thread_policy(num_threads, cpus=available_cpus(), machine_cpus=os.cpu_count(), load=load)


def prepare_thread_environment() -> dict:
    """Set the OpenMP waiting policy (passive unless the user chose one) while torch is not loaded yet: OpenMP
    reads it once, when torch loads. Every console entry calls it first (`lcm_hf.console.run_main`); returns the
    variables set (none once torch is loaded: too late for this process)."""
    if "torch" in sys.modules:
        return {}
    env = wait_environment(os.environ)
    os.environ.update(env)
    return env


def configure_threads(num_threads: int | None = None, announce: bool = True, flag: str | None = "--num_threads") -> int:
    """Set torch's threads by :func:`thread_policy` (intra-op: the count; interop: 1) and return the count.

    Parameters
    ----------
    num_threads : int, optional
        Threads per process (``--num_threads``); default: ``OMP_NUM_THREADS``, else the CPUs available to the
        process (``os.sched_getaffinity``) divided by the local world size, no more than the CPUs the machine's
        load leaves free, at least 1.
    announce : bool
        Print one line saying the count and why (on the local main process only).
    flag : str, optional
        The entry's flag for ``num_threads``, named in that line (None: the entry has none).
    """
    policy = current_thread_policy(num_threads)
    for name, value in policy.env.items():  # for processes started from here (torch here has read its own)
        os.environ.setdefault(name, value)
    import torch

    torch.set_num_threads(policy.threads)
    try:
        torch.set_num_interop_threads(1)  # no inter-op parallelism is used; fewer threads to wake on a busy machine
    except RuntimeError:  # set already, or inter-op work started: keep torch's
        pass
    if announce and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        source = flag if flag and policy.source == "--num_threads" else policy.source
        change = f"{flag} N or OMP_NUM_THREADS=N" if flag else "OMP_NUM_THREADS=N"
        print(f"torch threads: {policy.threads} per process ({source}; {change} to change)", flush=True)
    return policy.threads


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
    "WAIT_VARIABLES",
    "ThreadPolicy",
    "available_cpus",
    "check_flag_conflicts",
    "check_launch",
    "check_run_output",
    "configure_threads",
    "current_thread_policy",
    "machine_load",
    "prepare_run",
    "prepare_thread_environment",
    "quiet_libraries",
    "run_recipe",
    "thread_policy",
    "wait_environment",
]
