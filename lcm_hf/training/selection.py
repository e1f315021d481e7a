"""Model selection on validation: which checkpoint `LcmTrainer` keeps, and what the report says about it.

With `LcmTrainingArguments`' defaults (``load_best_model_at_end=True``, ``metric_for_best_model=
"mean/subject/roc_auc"``, one checkpoint per epoch) the model saved at the end is the checkpoint with the
best subject-level validation metric, not the last epoch's.

- **Metric fallback** (:func:`resolve_selection_metric`): ``mean/...`` metrics average the categorical BEIs
  only; a model with only continuous BEIs selects on ``loss`` instead, and a validation set without a
  ``subject_id`` column on the window-level metric (``mean/roc_auc``).
- **Two-stage schedule**: evaluations of stage 1 ("momentum", the mean over layers) score a readout the
  final model does not use, so they are not candidates (:func:`is_candidate`); the first candidate is the
  evaluation of the first stage-2 epoch.
- **best_layer**: each evaluation selects its layers first and then scores them (`LcmTrainer`), so the
  metric that ranks a checkpoint is that of the layers its ``config.json`` holds; :func:`restore_readout_layers`
  puts them back on the model after `Trainer` reloaded the weights (it reloads weights only), so the kept
  model ships the readout its score was computed with.
- **Early stopping** (``--early_stopping_patience N``): :func:`selection_callbacks` adds
  `transformers.EarlyStoppingCallback`.
- **Report** (:func:`selection_summary`): which checkpoint (step, epoch) was kept, on which metric, and the
  validation loss per epoch; `results.json` holds it under ``model_selection``.
"""

from __future__ import annotations

import json
import logging
import math
import os

from ..errors_lcm import LcmInputError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
TRAINER_STATE_NAME = "trainer_state.json"


def _metric_key(name: str) -> str:
    return name if name.startswith("eval_") else f"eval_{name}"


def resolve_selection_metric(args, config, eval_dataset=None) -> str | None:
    """Adapt ``args.metric_for_best_model`` to what the evaluation will report; returns the metric used.

    ``mean/...`` needs a categorical BEI (else ``loss``, lower is better) and ``mean/subject/...`` a
    ``subject_id`` column in a single validation set (else the window-level ``mean/...``).
    """
    name = getattr(args, "metric_for_best_model", None)
    if not name or not getattr(args, "load_best_model_at_end", False):
        return name
    bare = name[len("eval_"):] if name.startswith("eval_") else name
    if not bare.startswith("mean/"):
        return name
    if not any(bei["kind"] == "categorical" for bei in config.beis):
        logger.warning(f"metric_for_best_model {name!r}: the model has no categorical BEI; selecting on loss")
        args.metric_for_best_model, args.greater_is_better = "loss", False
        return "loss"
    columns = getattr(eval_dataset, "column_names", None)
    if bare.startswith("mean/subject/") and columns is not None and "subject_id" not in columns:
        window = "mean/" + bare[len("mean/subject/"):]
        logger.warning(f"metric_for_best_model {name!r}: the validation set has no subject_id; using {window!r}")
        args.metric_for_best_model = window
        return window
    return name


def is_candidate(trainer, metrics: dict) -> bool:
    """Whether this evaluation may become the best checkpoint: a stage-2 evaluation that reports the metric."""
    if trainer.is_in_train and trainer.schedule.stage == "momentum":
        return False
    key = _metric_key(trainer.args.metric_for_best_model or "loss")
    value = metrics.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        logger.warning(f"model selection: this evaluation has no {key}; it is not a candidate")
        return False
    return True


def selection_callbacks(args) -> list:
    """`EarlyStoppingCallback` when ``args.early_stopping_patience`` is set (needs load_best_model_at_end)."""
    patience = getattr(args, "early_stopping_patience", None)
    if not patience:
        return []
    if not args.load_best_model_at_end or not args.metric_for_best_model:
        raise LcmInputError(
            "--early_stopping_patience: expected --load_best_model_at_end true and a --metric_for_best_model, "
            f"got load_best_model_at_end={args.load_best_model_at_end}, metric_for_best_model={args.metric_for_best_model!r}"
        )
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(patience, getattr(args, "early_stopping_threshold", 0.0) or 0.0)]


def checkpoint_readout_layers(checkpoint: str) -> tuple[bool, dict | None]:
    """(found, readout_layers) stored with a checkpoint: its ``config.json``, else the schedule callback's
    state in ``trainer_state.json`` (LoRA checkpoints hold an adapter, not a config)."""
    path = os.path.join(checkpoint, CONFIG_NAME)
    if os.path.isfile(path):
        with open(path) as handle:
            stored = json.load(handle)
        if "readout_layers" in stored:
            return True, stored["readout_layers"]
    path = os.path.join(checkpoint, TRAINER_STATE_NAME)
    if os.path.isfile(path):
        with open(path) as handle:
            stored = json.load(handle).get("stateful_callbacks", {}).get("LcmReadoutScheduleCallback")
        if isinstance(stored, list):
            stored = stored[-1] if stored else None
        if stored and "readout_layers" in stored.get("attributes", {}):
            return True, stored["attributes"]["readout_layers"]
    return False, None


def restore_readout_layers(trainer, checkpoint: str | None) -> None:
    """Give the model and the schedule of `trainer` (an `LcmTrainer`) the readout layers saved with `checkpoint`."""
    if not checkpoint:
        return
    found, layers = checkpoint_readout_layers(checkpoint)
    if found:
        trainer.set_readout_layers(layers)


def _checkpoint_step(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    try:
        return int(os.path.basename(os.path.normpath(checkpoint)).rsplit("-", 1)[-1])
    except ValueError:
        return None


def selection_summary(trainer) -> dict:
    """Which checkpoint the trainer kept and why, for `results.json` and the reports.

    Keys: ``kept`` ("best" or "last"), ``metric``, ``greater_is_better``, ``best_metric``, ``best_step``,
    ``best_epoch``, ``last_epoch``, ``stopped_early``, ``validation_loss`` ([[epoch, loss], ...]) and
    ``validation_loss_rose`` (the last validation loss is above the lowest one).
    """
    args, state = trainer.args, trainer.state
    evaluations = [entry for entry in state.log_history if "eval_loss" in entry]
    losses = [[entry.get("epoch"), entry["eval_loss"]] for entry in evaluations]
    best_step = state.best_global_step or _checkpoint_step(state.best_model_checkpoint)
    kept_best = bool(args.load_best_model_at_end and state.best_model_checkpoint)
    best_epoch = next((entry.get("epoch") for entry in evaluations if entry.get("step") == best_step), None)
    finite = [loss for _, loss in losses if loss is not None and math.isfinite(loss)]
    return {
        "kept": "best" if kept_best else "last",
        "metric": args.metric_for_best_model if kept_best else None,
        "greater_is_better": args.greater_is_better if kept_best else None,
        "best_metric": state.best_metric if kept_best else None,
        "best_step": best_step if kept_best else state.global_step,
        "best_epoch": best_epoch if kept_best else state.epoch,
        "last_epoch": state.epoch,
        "stopped_early": bool(state.epoch is not None and state.epoch + 1e-6 < args.num_train_epochs),
        "validation_loss": losses,
        "validation_loss_rose": bool(finite and finite[-1] > min(finite) + 1e-9),
    }


__all__ = [
    "checkpoint_readout_layers",
    "is_candidate",
    "resolve_selection_metric",
    "restore_readout_layers",
    "selection_callbacks",
    "selection_summary",
]
