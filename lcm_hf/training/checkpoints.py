"""Complete-or-absent checkpoints and resuming from the command line.

`LcmTrainer` writes each checkpoint into a hidden staging folder ``.checkpoint-<step>.tmp`` and renames it to
``checkpoint-<step>`` once every file is written, so a kill or a full disk never leaves a ``checkpoint-*``
folder half written. Folders written otherwise (older versions, other tools) are checked here: a checkpoint
without a readable ``trainer_state.json`` or without model weights is incomplete, and resuming with
``True`` takes the newest complete one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STAGING_PATTERN = re.compile(r"^\.checkpoint-(\d+)\.tmp$")
TRAINER_STATE_NAME = "trainer_state.json"
WEIGHT_NAMES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)
SHARDED_PREFIXES = ("pytorch_model_fsdp", "global_step")
_TRUE = ("true", "yes", "1")
_FALSE = ("", "false", "no", "0", "none")


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why the checkpoint `folder` cannot be resumed from ("no trainer_state.json", ...), or None if complete."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return "not a folder"
    state = os.path.join(folder, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return f"no {TRAINER_STATE_NAME}"
    try:
        with open(state, encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError):
        return f"unreadable {TRAINER_STATE_NAME}"
    names = os.listdir(folder)
    sharded = any(name.startswith(SHARDED_PREFIXES) for name in names)  # FSDP / DeepSpeed layouts
    if not sharded and not any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHT_NAMES):
        return "no model weights"
    return None


def checkpoints(output_dir: str | os.PathLike) -> list[str]:
    """The ``checkpoint-<step>`` folders of `output_dir`, newest (highest step) first."""
    output_dir = os.fspath(output_dir)
    if not os.path.isdir(output_dir):
        return []
    found = [
        (int(match.group(1)), os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if (match := CHECKPOINT_PATTERN.match(name)) and os.path.isdir(os.path.join(output_dir, name))
    ]
    return [path for _, path in sorted(found, reverse=True)]


def last_complete_checkpoint(output_dir: str | os.PathLike) -> tuple[str | None, list[tuple[str, str]]]:
    """(the newest complete checkpoint of `output_dir` or None, [(newer incomplete checkpoint, why)])."""
    skipped = []
    for path in checkpoints(output_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def resolve_resume(value, output_dir: str | os.PathLike | None = None,
                   flag: str = "--resume_from_checkpoint") -> bool | str | None:
    """The ``train(resume_from_checkpoint=...)`` value of a command-line ``--resume_from_checkpoint``.

    Parameters
    ----------
    value : str, bool or None
        ``"true"``/``"True"``/True: the newest complete checkpoint of the output folder (returns True);
        ``"false"``/None: no resume (returns None); a path: that checkpoint (returns the path).
    output_dir : path-like, optional
        The run's output folder (to check that ``true`` has a checkpoint to resume from).
    flag : str
        How errors name the option.

    Raises
    ------
    ValueError
        For a path that does not exist or is an incomplete checkpoint, or ``true`` with no complete
        checkpoint in `output_dir`; the message names `flag`.
    """
    if value is None or value is False:
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in _TRUE):
        if output_dir is not None:
            found, skipped = last_complete_checkpoint(output_dir)
            if found is None:
                extra = f" (incomplete: {', '.join(f'{p} ({why})' for p, why in skipped)})" if skipped else ""
                raise LcmInputError(
                    f"{flag}: expected a complete checkpoint-<step> folder in --output_dir {output_dir}, "
                    f"got none{extra}"
                )
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return None
    path = os.fspath(value)
    if not os.path.exists(path):
        raise LcmInputError(f"{flag}: expected a checkpoint folder or 'true', got {path!r}, which does not exist")
    problem = checkpoint_problem(path)
    if problem is not None:
        found, _ = last_complete_checkpoint(path)  # a run folder: its newest complete checkpoint
        if found is not None and not CHECKPOINT_PATTERN.match(os.path.basename(os.path.normpath(path))):
            return found
        newest = last_complete_checkpoint(output_dir)[0] if output_dir is not None else None
        hint = f"; the newest complete one is {newest}" if newest else ""
        raise LcmInputError(
            f"{flag}: expected a complete checkpoint folder, got {path!r}, which is incomplete ({problem}){hint}"
        )
    return path


def resume_argument(training_args, data_args=None) -> bool | str | None:
    """The scripts' ``--resume_from_checkpoint`` (a `TrainingArguments` string) as the recipes take it.

    ``true``/``True`` -> True (the newest complete checkpoint of ``--output_dir``), a path -> the path;
    ValueError naming the flag for a path that does not exist, an incomplete checkpoint, ``true`` without a
    checkpoint, or with ``--cv_folds``. Without it, a warning says when ``--output_dir`` already holds
    checkpoints (a fresh run overwrites them).
    """
    flag = "--resume_from_checkpoint"
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir, flag=flag)
    if resume is not None and getattr(data_args, "cv_folds", None):
        raise LcmInputError(f"{flag}: expected no resume with --cv_folds (each fold trains anew), got {resume!r}")
    if resume is None and checkpoints(training_args.output_dir) and not getattr(data_args, "cv_folds", None):
        logger.warning(
            f"--output_dir {training_args.output_dir} holds checkpoints from an earlier run: training starts "
            f"from step 0 and replaces them; pass {flag} true to continue that run instead"
        )
    return resume


def checkpoint_to_resume(resume_from_checkpoint, output_dir: str | os.PathLike) -> str | None:
    """The checkpoint folder `Trainer.train(resume_from_checkpoint=...)` should load, logged.

    True: the newest complete checkpoint of `output_dir` (incomplete newer ones are skipped, with a warning
    naming them); a path: that checkpoint, refused (ValueError) if incomplete; None/False: None.
    """
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is True:
        found, skipped = last_complete_checkpoint(output_dir)
        for path, why in skipped:
            logger.warning(f"skipping the incomplete checkpoint {path} ({why})")
        if found is None:
            raise LcmInputError(
                f"resume_from_checkpoint=True: expected a complete checkpoint-<step> folder in {output_dir}, got none"
            )
        (logger.warning if skipped else logger.info)(f"resuming from {found}, the newest complete checkpoint")
        announce_resume(found, "the newest complete checkpoint")
        return found
    path = os.fspath(resume_from_checkpoint)
    problem = checkpoint_problem(path)
    if problem is not None:
        raise LcmInputError(f"resume_from_checkpoint: expected a complete checkpoint folder, got {path!r} ({problem})")
    logger.info(f"resuming from {path}")
    announce_resume(path)
    return path


def checkpoint_step(folder: str | os.PathLike) -> int | None:
    """The optimizer step a checkpoint was saved at (its ``trainer_state.json`` ``global_step``), or None."""
    try:
        with open(os.path.join(os.fspath(folder), TRAINER_STATE_NAME), encoding="utf-8") as handle:
            return int(json.load(handle)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def announce_resume(folder: str | os.PathLike, why: str = "") -> str:
    """Print (on the main process) one line saying which checkpoint a run resumes from and at which step; returns it."""
    step = checkpoint_step(folder)
    line = (f"resuming from {os.fspath(folder)}{f' ({why})' if why else ''}: training continues at step "
            f"{step if step is not None else '?'}; the summary counts only the steps trained now")
    if int(os.environ.get("RANK", "0")) == 0:
        print(line, flush=True)
    return line


def needed_checkpoints(training_args):
    """The training arguments of a run with the checkpoints that nothing would read dropped.

    Checkpoints are read to resume a killed run and to load the best one at the end (``load_best_model_at_end``).
    A ``--cv_folds`` fold (``cv_fold`` set) is never resumed (:func:`resume_argument` refuses it: each fold trains
    anew), so a fold that keeps no best checkpoint (the small-cohort policy, or ``--load_best_model_at_end false``)
    saves none (``save_strategy`` "no"; on tens of subjects a checkpoint every epoch took longer than the
    optimizer steps), and a fold that keeps the best one saves only the evaluations that improve on the best so
    far (``save_strategy`` "best": the checkpoint loaded at the end is the same). A copy is returned when
    something changes; any other run's arguments come back unchanged (the same object).
    """
    import copy

    if getattr(training_args, "cv_fold", None) is None:
        return training_args
    save = str(getattr(training_args.save_strategy, "value", training_args.save_strategy))
    wanted = "best" if training_args.load_best_model_at_end else "no"
    if save in ("no", wanted) or (wanted == "best" and save != str(getattr(
            training_args.eval_strategy, "value", training_args.eval_strategy))):
        return training_args  # nothing saved, or saves a selection does not line up with (left as they are)
    args = copy.copy(training_args)
    args.save_strategy = wanted
    return args


def save_checkpoint_staged(trainer, model, trial, save) -> None:
    """Run ``save(model, trial)`` (`Trainer._save_checkpoint`) into ``.checkpoint-<step>.tmp`` and rename the
    finished folder to ``checkpoint-<step>`` (replacing an older one of that step), then rotate checkpoints.

    `trainer._get_output_dir` must return ``trainer._checkpoint_staging`` while it is set (LcmTrainer does).
    All processes write into the staging folder (each its RNG state); the main process renames it.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

    from ..atomic import replace_folder

    run_dir = trainer._get_output_dir(trial)
    name = f"{PREFIX_CHECKPOINT_DIR}-{trainer.state.global_step}"
    root = os.path.join(run_dir, f".{name}.tmp")
    main = trainer.args.should_save
    if main:
        os.makedirs(run_dir, exist_ok=True)
        for stale in os.listdir(run_dir):  # left by a killed run
            if STAGING_PATTERN.match(stale):
                shutil.rmtree(os.path.join(run_dir, stale), ignore_errors=True)
        os.makedirs(root)
    trainer.accelerator.wait_for_everyone()
    trainer._checkpoint_staging = root
    try:
        save(model, trial)
    finally:
        trainer._checkpoint_staging = None
    trainer.accelerator.wait_for_everyone()
    staged, final = os.path.join(root, name), os.path.join(run_dir, name)
    best = trainer.state.best_model_checkpoint
    if best and os.path.abspath(best).startswith(os.path.abspath(root) + os.sep):  # on every process
        trainer.state.best_model_checkpoint = final
        if main:
            trainer.state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
    if main:
        replace_folder(staged, final)
        shutil.rmtree(root, ignore_errors=True)
        rotate_checkpoints(
            output_dir=run_dir,
            save_total_limit=trainer.args.save_total_limit,
            best_model_checkpoint=trainer.state.best_model_checkpoint,
            use_mtime=True,
        )
    trainer.accelerator.wait_for_everyone()


__all__ = [
    "announce_resume",
    "checkpoint_problem",
    "checkpoint_step",
    "checkpoint_to_resume",
    "save_checkpoint_staged",
    "checkpoints",
    "last_complete_checkpoint",
    "needed_checkpoints",
    "resolve_resume",
    "resume_argument",
]
