"""`LcmTrainer`: a `transformers.Trainer` with LCM's two-stage readout schedule and multitask loss.

What it adds to `Trainer`, without copying `training_step`:

- **Two-stage schedule** (`LcmReadoutScheduleCallback`): epochs ``[0, args.momentum_epochs)`` train in
  stage 1 ("momentum": the mean over layers), later epochs in stage 2 ("adaptive": the readout policy).
  `compute_loss` passes the stage to the model as ``readout_stage``.
- **best_layer selection**: with ``config.readout_policy == "best_layer"``, every evaluation from the stage
  switch on picks, per categorical BEI, the layer with the best validation metric (window-level balanced
  accuracy by default) and writes it with ``model.config.set_readout_layers``; it selects *before* it scores,
  so the evaluation's reported metrics and loss (which rank its checkpoint for ``load_best_model_at_end``) are
  those of the selected layers, the readout the checkpoint saves.
- **Checkpoint state**: the callback is an `ExportableState`; its stage, selected layers and selection history
  go into ``trainer_state.json`` of every checkpoint, and ``train(resume_from_checkpoint=...)`` restores them
  (and the model config's ``readout_layers``) before training continues. The config saved with the
  checkpoint holds the layers too.
- **Complete-or-absent checkpoints** (`lcm_hf.training.checkpoints`): each checkpoint is written into a hidden
  ``.checkpoint-<step>.tmp`` folder and renamed when complete; ``train(resume_from_checkpoint=True)`` takes the
  newest complete checkpoint, skipping (and naming) incomplete ones.
- **Model selection** (`selection.py`): with ``load_best_model_at_end`` the kept checkpoint is the best stage-2
  evaluation's, with the readout layers saved with it; ``early_stopping_patience`` adds early stopping.
- **Missing labels and gradient accumulation**: the model returns unweighted per-BEI loss sums and label
  counts. `get_batch_samples` counts, per BEI, the labels of all micro-batches of one optimizer step on all
  processes (K,), and `compute_loss` returns ``sum_k w_k * loss_sum_k / count_k * world_size`` for each
  micro-batch: summed over micro-batches and averaged by DDP, the gradient is exactly that of the
  per-BEI mean over the whole global batch, whatever the split into micro-batches or processes. A BEI
  without any label in the step contributes nothing.
- **Metrics**: unless `compute_metrics` is given, evaluation reports `lcm_hf.training.metrics.bei_metrics`
  (through the local `evaluate` module `lcm_hf.training.evaluate_metric`) for the reduced prediction and every layer, at window and subject level (from the eval dataset's ``subject_id``
  column) and per dataset (``dataset`` column).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import warnings

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState, PrinterCallback, ProgressCallback

from ..readout_lcm import weighted_bei_loss
from .checkpoints import checkpoint_to_resume, save_checkpoint_staged
from .evaluate_metric import compute_bei_metrics
from .metrics import best_layers
from .selection import is_candidate, resolve_selection_metric, restore_readout_layers, selection_callbacks

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
_EPOCH_EPS = 1e-6


def _unwrap(model):
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model") and not hasattr(model, "reduce_layers"):  # peft
        model = model.get_base_model()
    return model


class LcmReadoutScheduleCallback(TrainerCallback, ExportableState):
    """Tracks the training stage and the `best_layer` selections; saved in and restored from checkpoints.

    Args:
        momentum_epochs: epochs of stage 1 (None: the training arguments' `momentum_epochs` when given, else the
            model config's at train begin, so `LcmTrainingArguments` and plain `TrainingArguments` run the same
            schedule); the model config records the value used.
        selection_metric: per-layer validation metric used by `best_layer` ("balanced_accuracy", "macro_f1",
            "roc_auc", "accuracy").
        selection_level: "" (window level) or "subject/" (subject level).
        metric_prefix: the evaluation's metric prefix the selection reads ("eval" for a single eval set,
            "eval_<name>" for the named set of a dict of eval sets).
        momentum_steps: optimizer steps of stage 1, counted in steps instead of epochs (None: the training
            arguments' `momentum_steps`; epochs are counted while both are None). Streaming sets it.
    """

    def __init__(
        self,
        momentum_epochs: int | None = None,
        selection_metric: str = "balanced_accuracy",
        selection_level: str = "",
        metric_prefix: str = "eval",
        momentum_steps: int | None = None,
    ):
        self.momentum_epochs = momentum_epochs
        self.momentum_steps = momentum_steps
        self.selection_metric = selection_metric
        self.selection_level = selection_level
        self.metric_prefix = metric_prefix
        self.momentum_source = "given explicitly" if momentum_epochs is not None else None  # for `ran`
        self.stage = None
        self.readout_layers = None
        self.stage_history = []  # [(epoch index, stage)] at every epoch begin; [(step, stage)] at switches by steps
        self.selection_history = []  # [{"step", "epoch", "layers"}]
        self.selected_at_step = None  # the step of the latest selection

    def state(self) -> dict:
        return {
            "args": {
                "momentum_epochs": self.momentum_epochs,
                "selection_metric": self.selection_metric,
                "selection_level": self.selection_level,
                "metric_prefix": self.metric_prefix,
                "momentum_steps": self.momentum_steps,
            },
            "attributes": {
                "stage": self.stage,
                "readout_layers": self.readout_layers,
                "stage_history": self.stage_history,
                "selection_history": self.selection_history,
            },
        }

    def ran(self, config) -> dict:
        """What the schedule ran, for results and reports: ``readout_policy``, ``momentum_epochs`` (or
        ``momentum_steps``), where the stage-1 length came from and the best_layer selection metric."""
        return {
            "readout_policy": config.readout_policy,
            "momentum_epochs": None if self.momentum_steps is not None else self.momentum_epochs,
            "momentum_steps": self.momentum_steps,
            "momentum_from": self.momentum_source,
            "selection_metric": self.selection_metric if config.readout_policy == "best_layer" else None,
        }

    def load_attributes(self, attributes: dict) -> None:
        for key, value in attributes.items():
            setattr(self, key, value)

    def stage_for_epoch(self, epoch: float) -> str:
        return "momentum" if epoch + _EPOCH_EPS < (self.momentum_epochs or 0) else "adaptive"

    def stage_for_step(self, step: int) -> str:
        return "momentum" if step < (self.momentum_steps or 0) else "adaptive"

    def _step_stage(self, state) -> None:
        stage = self.stage_for_step(state.global_step)
        if stage != self.stage or not self.stage_history:
            if self.stage is not None and stage != self.stage:
                logger.info(f"LCM readout schedule: step {state.global_step} switches from {self.stage!r} to {stage!r}")
            self.stage_history.append([state.global_step, stage])
        self.stage = stage

    def on_step_begin(self, args, state, control, **kwargs):
        if self.momentum_steps is not None:
            self._step_stage(state)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        config = _unwrap(model).config
        if self.momentum_steps is None:
            self.momentum_steps = getattr(args, "momentum_steps", None)
        # One default (the config's, DEFAULT_MOMENTUM_EPOCHS for a new model); a value given explicitly wins:
        # this callback's argument, else the training arguments' (LcmTrainingArguments defaults to None).
        if self.momentum_epochs is None and getattr(args, "momentum_epochs", None) is not None:
            self.momentum_epochs, self.momentum_source = args.momentum_epochs, "the training arguments"
        if self.momentum_epochs is None:
            self.momentum_epochs, self.momentum_source = config.momentum_epochs, "the model config"
        config.momentum_epochs = int(self.momentum_epochs)  # the config records what training used
        if (self.momentum_steps is None and args.max_steps <= 0 and self.momentum_epochs >= args.num_train_epochs
                and config.readout_policy not in ("mean", "last")):
            warnings.warn(f"stage 1 ({self.momentum_epochs} momentum epochs, from {self.momentum_source}) covers all "
                          f"{args.num_train_epochs:g} training epochs: the readout policy {config.readout_policy!r} "
                          "never trains; pass --momentum_epochs below --num_train_epochs", UserWarning, stacklevel=2)
        if self.readout_layers:  # restored from a checkpoint
            config.set_readout_layers(dict(self.readout_layers))
        self.stage = self.stage_for_epoch(math.floor((state.epoch or 0.0) + _EPOCH_EPS))
        if self.momentum_steps is not None:
            self.stage = self.stage_for_step(state.global_step)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.momentum_steps is not None:
            return self._step_stage(state)
        # state.epoch is the (float) progress so far: an integer at a fresh epoch, inside it when resuming.
        epoch = math.floor((state.epoch or 0.0) + _EPOCH_EPS)
        stage = self.stage_for_epoch(epoch)
        if self.stage is not None and stage != self.stage:
            logger.info(
                f"LCM readout schedule: epoch {epoch} switches from stage {self.stage!r} to {stage!r}"
            )
        self.stage = stage
        if not self.stage_history or list(self.stage_history[-1]) != [epoch, stage]:  # resumed mid-epoch: once
            self.stage_history.append([epoch, stage])

    def selection_due(self, state) -> bool:
        """Whether an evaluation at this point selects `best_layer` layers: from the stage switch on (the
        evaluation that closes the last momentum epoch already chooses the layers stage 2 starts with)."""
        if self.momentum_steps is not None:
            return state.global_step >= self.momentum_steps
        return state.epoch is not None and state.epoch + _EPOCH_EPS >= (self.momentum_epochs or 0)

    def select(self, metrics: dict, config, state, prefix: str = "") -> dict:
        """Select each categorical BEI's layer from the per-layer metrics ``{prefix}{bei}/layer_{l}/...`` of one
        evaluation, write them to ``config.readout_layers`` and the history; returns the layers ({} if none)."""
        selected = best_layers(metrics, config.beis, self.selection_metric, prefix=prefix, level=self.selection_level)
        if not selected:
            return {}
        layers = {**(config.readout_layers or {}), **selected}
        config.set_readout_layers(layers)
        self.readout_layers = dict(layers)
        self.selection_history.append({"step": state.global_step, "epoch": state.epoch, "layers": dict(layers)})
        self.selected_at_step = state.global_step
        return layers

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        """Fallback for a trainer whose metrics did not select (a user's `compute_metrics`): select after the
        evaluation, so its reported score is the previous layers'. `LcmTrainer`'s own metrics select first and
        score the selected layers (`LcmTrainer._compute_lcm_metrics`)."""
        config = _unwrap(model).config
        if config.readout_policy != "best_layer" or not metrics or not self.selection_due(state):
            return
        if self.selected_at_step == state.global_step:
            return  # this evaluation already selected, before it scored
        self.select(metrics, config, state, prefix=f"{self.metric_prefix}_")


class LcmProgressCallback(ProgressCallback):
    """A quiet terminal: on a terminal, one progress bar per training run, on which the loss and the latest
    evaluation's one-line summary (loss and the mean headline metrics) update in place; the last evaluation's line
    and a summary line stay when the run ends (also when the output is not a terminal: no bar then). With
    ``disable_tqdm`` every evaluation prints its line. Every metric still goes to `report_to` (TensorBoard),
    `trainer.state.log_history` and the run's files."""

    HEADLINE = ("balanced_accuracy", "roc_auc", "subject/balanced_accuracy", "r2", "mae")
    last_evaluation = None  # outside training (a standalone `evaluate`) every evaluation prints its line
    train_postfix = ""
    every_evaluation = True

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_evaluation = None
        self.train_postfix = ""
        self.every_evaluation = bool(args.disable_tqdm)
        if state.is_world_process_zero and not args.disable_tqdm and sys.stderr.isatty():
            from tqdm.auto import tqdm

            name = os.path.basename(os.path.normpath(args.output_dir)) if args.output_dir else "training"
            self.training_bar = tqdm(total=state.max_steps, dynamic_ncols=True, desc=name, leave=True)
        self.current_step = 0
        self.first_step = state.global_step  # > 0 when resumed: the summary counts only the steps trained now

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        return  # no evaluation bars

    def _write(self, line: str) -> None:
        if self.training_bar is not None:
            self.training_bar.write(line)
        else:
            print(line, flush=True)

    def _summary(self, logs: dict) -> str:
        epoch = f"epoch {logs['epoch']:g}" if isinstance(logs.get("epoch"), (int, float)) else "end"
        prefix = next((key[: -len("_loss")] for key in logs if key.endswith("_loss")), None) or next(
            key.split("_mean/", 1)[0] for key in logs if "_mean/" in key)
        parts = [f"loss {logs[prefix + '_loss']:.4g}"] if f"{prefix}_loss" in logs else []
        for metric in self.HEADLINE:
            value = logs.get(f"{prefix}_mean/{metric}")
            if isinstance(value, (int, float)):
                parts.append(f"{metric} {value:.3f}")
        return f"{epoch} {prefix}: {', '.join(parts)}"

    def _refresh(self) -> None:
        postfix = " | ".join(part for part in (self.train_postfix, self.last_evaluation) if part)
        self.training_bar.set_postfix_str(postfix, refresh=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if any(key.endswith("_loss") and key != "train_loss" or "_mean/" in key for key in logs):
            self.last_evaluation = self._summary(logs)
            if self.every_evaluation:
                self._write(self.last_evaluation)
            elif self.training_bar is not None:
                self._refresh()
        elif "train_runtime" in logs:
            if not self.every_evaluation and self.last_evaluation:
                self._write(f"last evaluation: {self.last_evaluation}")
            loss = logs.get("train_loss")
            first = getattr(self, "first_step", 0)
            resumed = f" (resumed at step {first}, now at step {state.global_step})" if first else ""
            self._write(f"trained {state.global_step - first} steps{resumed} in {logs['train_runtime']:.1f} s"
                        + (f", mean loss {loss:.4g}" if isinstance(loss, (int, float)) else ""))
        elif self.training_bar is not None:
            self.train_postfix = ", ".join(
                f"{key} {logs[key]:.4g}" for key in ("loss", "learning_rate") if isinstance(logs.get(key), float))
            self._refresh()

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            self.training_bar.close()
            self.training_bar = None


class LcmTrainer(Trainer):
    """`Trainer` for `LcmForBeiPrediction` with the two-stage readout schedule (see the module docstring).

    Extra args:
        readout_selection_metric: metric for `best_layer` selection (default "balanced_accuracy").
        readout_selection_level: "" (window level, default) or "subject/".
        readout_selection_prefix: metric prefix of the evaluation used for selection (default "eval").
        layer_metrics: also score every layer at evaluation (default True).
    """

    loss_is_scaled_for_ga = True  # compute_loss normalises by the per-BEI counts of the whole step

    def __init__(
        self,
        *args,
        readout_selection_metric: str = "balanced_accuracy",
        readout_selection_level: str = "",
        readout_selection_prefix: str = "eval",
        layer_metrics: bool = True,
        **kwargs,
    ):
        user_metrics = kwargs.get("compute_metrics")
        if user_metrics is None:
            kwargs["compute_metrics"] = self._compute_lcm_metrics
        super().__init__(*args, **kwargs)
        self.layer_metrics = layer_metrics
        resolve_selection_metric(self.args, _unwrap(self.model).config, self.eval_dataset)
        for callback in selection_callbacks(self.args):
            self.add_callback(callback)
        self._metrics_dataset = None
        self._metric_key_prefix = "eval"  # of the evaluation being scored
        self._selected_loss = None  # its loss with the layers it selected (best_layer)
        if self.args.label_names is None:
            self.label_names = ["labels"]
        noisy = [cb for cb in self.callback_handler.callbacks if type(cb) in (ProgressCallback, PrinterCallback)]
        for callback in noisy:
            self.callback_handler.remove_callback(type(callback))
        if noisy:
            self.add_callback(LcmProgressCallback)
        if self.args.dataloader_pin_memory and self.args.device.type == "cpu":
            self.args.dataloader_pin_memory = False  # nothing to pin without an accelerator (and no warning)
        if not any(isinstance(cb, LcmReadoutScheduleCallback) for cb in self.callback_handler.callbacks):
            self.add_callback(
                LcmReadoutScheduleCallback(
                    selection_metric=readout_selection_metric,
                    selection_level=readout_selection_level,
                    metric_prefix=readout_selection_prefix,
                )
            )

    # ------------------------------------------------------------------ schedule
    @property
    def schedule(self) -> LcmReadoutScheduleCallback:
        """The schedule callback (looked up each time: resuming may replace the instance)."""
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, LcmReadoutScheduleCallback):
                return callback
        raise RuntimeError("LcmTrainer needs its LcmReadoutScheduleCallback; it was removed")

    @property
    def readout_stage(self) -> str:
        """The current stage: the schedule's while training, "adaptive" (inference behaviour) otherwise."""
        if self.is_in_train and self.schedule.stage is not None:
            return self.schedule.stage
        return "adaptive"

    # ------------------------------------------------------------------ loss
    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """Fetch the micro-batches of one optimizer step and count, per BEI, their labels on all processes."""
        batch_samples = []
        for _ in range(num_batches):
            try:
                batch_samples.append(next(epoch_iterator))
            except StopIteration:
                break
        if not batch_samples or "labels" not in batch_samples[0]:
            return batch_samples, None
        counts = sum((~torch.isnan(batch["labels"])).sum(dim=0) for batch in batch_samples).to(device)
        if self.args.world_size > 1:
            counts = self.accelerator.reduce(counts, reduction="sum")
        return batch_samples, counts

    def _get_num_items_in_batch(self, batch_samples, device):
        return None  # evaluation uses the model's own per-batch normalisation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(
            connectivity=inputs["connectivity"], labels=inputs.get("labels"), readout_stage=self.readout_stage
        )
        loss = outputs.loss
        if num_items_in_batch is not None and outputs.bei_loss_sums is not None:
            beis = _unwrap(model).config.beis
            loss = weighted_bei_loss(outputs.bei_loss_sums, num_items_in_batch, beis) * self.accelerator.num_processes
        if return_outputs:
            kept = {"loss": loss, "logits": outputs.logits, "layer_logits": outputs.layer_logits}
            return loss, kept
        return loss

    # ------------------------------------------------------------------ metrics
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(dataset, dict):  # a dict of sets comes back here once per set
            self._metrics_dataset = dataset
            self._metric_key_prefix = metric_key_prefix
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix="test"):
        self._metrics_dataset = test_dataset
        self._metric_key_prefix = metric_key_prefix
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """`Trainer.evaluation_loop`; when this evaluation selected `best_layer` layers, its loss is that of the
        selected layers too (the metrics are: `_compute_lcm_metrics`)."""
        self._selected_loss = None
        output = super().evaluation_loop(dataloader, description, prediction_loss_only=prediction_loss_only,
                                         ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if self._selected_loss is not None:
            output.metrics[f"{metric_key_prefix}_loss"] = self._selected_loss
            self._selected_loss = None
        return output

    def _dataset_column(self, name: str, length: int):
        dataset = self._metrics_dataset
        column_names = getattr(dataset, "column_names", None)
        if column_names is None or name not in column_names:
            return None
        values = list(dataset[name])
        return values if len(values) == length else None

    def _compute_lcm_metrics(self, eval_prediction) -> dict[str, float]:
        predictions = eval_prediction.predictions
        logits, layer_logits = (
            (predictions[0], predictions[1]) if isinstance(predictions, tuple) else (predictions, None)
        )
        labels = eval_prediction.label_ids
        model = _unwrap(self.model)
        identity = {
            "subject_ids": self._dataset_column("subject_id", len(labels)),
            "datasets": self._dataset_column("dataset", len(labels)),
            "scan_ids": self._dataset_column("scan_id", len(labels)),
        }
        layer_logits = layer_logits if self.layer_metrics else None
        # the `evaluate` module (evaluate_metric/), i.e. metrics.bei_metrics
        metrics = compute_bei_metrics(logits, labels, model.config.beis, layer_logits=layer_logits, **identity)
        if layer_logits is None or not self._selects_now(model.config):
            return metrics
        # best_layer: select from this evaluation's per-layer metrics first, then score the selected layers, so the
        # score that ranks this checkpoint is that of the readout it saves (selection ranks what it ships).
        if not self.schedule.select(metrics, model.config, self.state):
            return metrics
        with torch.no_grad():
            logits = model.reduce_layers(torch.as_tensor(np.asarray(layer_logits, dtype=np.float32)), "adaptive")[0]
        metrics.update(compute_bei_metrics(logits.numpy(), labels, model.config.beis, **identity))
        self._selected_loss = self._evaluation_loss(model, logits, labels)
        return metrics

    def _selects_now(self, config) -> bool:
        """Whether the evaluation being scored selects `best_layer` layers: in training, from the stage switch on,
        on the evaluation set the selection reads."""
        return (
            self.is_in_train
            and config.readout_policy == "best_layer"
            and getattr(self, "_metric_key_prefix", "eval") == self.schedule.metric_prefix
            and self.schedule.selection_due(self.state)
        )

    def _evaluation_loss(self, model, logits: torch.Tensor, labels) -> float:
        """The evaluation loss of reduced `logits` (n, P) as `Trainer` averages it: the multitask loss of each
        evaluation batch, weighted by the batch's size."""
        labels = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        size, total = max(1, self.args.eval_batch_size), 0.0
        for start in range(0, len(labels), size):
            batch_logits, batch_labels = logits[start : start + size], labels[start : start + size]
            sums, counts = model.bei_losses(batch_logits, batch_labels)
            total += float(weighted_bei_loss(sums, counts, model.config.beis)) * len(batch_labels)
        return total / max(1, len(labels))

    # ------------------------------------------------------------------ model selection (selection.py)
    def _determine_best_metric(self, metrics, trial) -> bool:
        """Only stage-2 evaluations that report the metric are candidates for the kept checkpoint."""
        return is_candidate(self, metrics) and super()._determine_best_metric(metrics, trial)

    def _load_best_model(self) -> None:
        """Reload the best checkpoint's weights and the readout layers selected with them."""
        super()._load_best_model()
        restore_readout_layers(self, self.state.best_model_checkpoint)

    def floating_point_ops(self, inputs) -> int:
        """`Trainer`'s estimate (6 x input elements x parameters without embeddings), with the parameters counted
        once per training run: counting walks every module, at every step (a twentieth of a small model's step)."""
        main = getattr(self.model, "main_input_name", "input_ids")
        if main not in inputs or not hasattr(self.model, "num_parameters"):
            return super().floating_point_ops(inputs)
        if getattr(self, "_counted_parameters", None) is None:
            self._counted_parameters = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main].numel() * self._counted_parameters

    # ------------------------------------------------------------------ resume
    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """`Trainer.train`, restoring the readout stage and selected layers when resuming; True resumes from
        the newest *complete* checkpoint (checkpoints.py) and logs which."""
        self._counted_parameters = None  # the model may have changed since (new BEIs, adapters)
        checkpoint = checkpoint_to_resume(resume_from_checkpoint, self.args.output_dir)
        if checkpoint is not None:
            self._restore_schedule(checkpoint)
        return super().train(
            resume_from_checkpoint=checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )

    def _get_output_dir(self, trial) -> str:
        return getattr(self, "_checkpoint_staging", None) or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """Complete or absent: written into ``.checkpoint-<step>.tmp``, then renamed (checkpoints.py)."""
        save_checkpoint_staged(self, model, trial, super()._save_checkpoint)

    def _restore_schedule(self, checkpoint: str) -> None:
        path = os.path.join(checkpoint, TRAINER_STATE_NAME)
        if not os.path.isfile(path):
            return
        with open(path) as handle:
            stored = json.load(handle).get("stateful_callbacks", {}).get(LcmReadoutScheduleCallback.__name__)
        if isinstance(stored, list):
            stored = stored[-1] if stored else None
        if not stored:
            return
        self.schedule.load_attributes(stored.get("attributes", {}))
        if self.schedule.readout_layers:
            self.set_readout_layers(self.schedule.readout_layers)

    def set_readout_layers(self, layers: dict | None) -> None:
        """Give the model config and the schedule these `best_layer` layers (``{bei: layer}``, None: none)."""
        layers = dict(layers) if layers else None
        _unwrap(self.model).config.set_readout_layers(layers)
        self.schedule.readout_layers = layers


def numpy_predictions(prediction_output) -> tuple[np.ndarray, np.ndarray | None]:
    """(logits (n, P), layer_logits (n, L, P) or None) from a `Trainer.predict` output."""
    predictions = prediction_output.predictions
    if isinstance(predictions, tuple):
        return np.asarray(predictions[0]), np.asarray(predictions[1]) if len(predictions) > 1 else None
    return np.asarray(predictions), None


__all__ = [
    "LcmProgressCallback",
    "LcmReadoutScheduleCallback",
    "LcmTrainer",
    "numpy_predictions",
]
