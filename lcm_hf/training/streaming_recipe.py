"""Streaming pretraining: what ``training/pretrain.py --streaming true`` runs.

- :class:`StreamingLcmTrainer`: `LcmTrainer` over an endless :class:`~lcm_hf.training.streaming.WindowStream`.
  Its training DataLoader is built here and not re-sharded by Accelerate (the stream is split by node already,
  `datasets.distributed.split_dataset_by_node`); every checkpoint holds each process's stream position
  (``stream_state-<rank>.json``, next to ``rng_state_<rank>.pth``), and resuming restores it instead of
  replaying the batches already seen (``ignore_data_skip``).
- :func:`pretrain_streaming`: the recipe: vocabulary from the BEI columns alone, held-out subjects materialised,
  the schedule counted in steps (``--momentum_steps``), epoch-based evaluation / saving / logging turned into
  step-based ones (a stream has no epochs).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict

from ..errors_lcm import LcmInputError
from .trainer import LcmTrainer

logger = logging.getLogger(__name__)

STREAM_STATE_NAME = "stream_state-{rank}.json"


def check_stream_workers(value: int) -> None:
    """``--stream_workers`` is 0 or 1: one process decodes the stream, so each batch knows its position."""
    if value not in (0, 1):
        raise LcmInputError(
            f"--stream_workers: expected 0 or 1 (one process decodes the stream, so each batch knows its "
            f"position), got {value}"
        )


class StreamingLcmTrainer(LcmTrainer):
    """`LcmTrainer` whose training data is a resumable stream (see the module docstring)."""

    def __init__(self, *args, stream_workers: int = 1, **kwargs):
        check_stream_workers(stream_workers)
        super().__init__(*args, **kwargs)
        self.args.ignore_data_skip = True  # the stream resumes from its saved position, not by replaying
        self.stream_workers = stream_workers
        self._stream_state = None

    def get_train_dataloader(self):
        from torch.utils.data import DataLoader

        if self.train_dataset is None:
            raise LcmInputError("StreamingLcmTrainer: training requires a train_dataset (a WindowStream)")
        return DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=self.stream_workers,  # each batch carries its stream position out of the worker
            pin_memory=self.args.dataloader_pin_memory,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        state = inputs.pop("stream_state", None)
        if state is not None and model.training:
            self._stream_state = state  # the position after the last batch trained on
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self._stream_state is None:
            return
        path = os.path.join(output_dir, STREAM_STATE_NAME.format(rank=self.args.process_index))
        record = {"world_size": self.args.world_size, "state": self._stream_state}
        with open(path + ".tmp", "w") as handle:
            json.dump(record, handle)
        os.replace(path + ".tmp", path)

    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        from .checkpoints import checkpoint_to_resume

        checkpoint = checkpoint_to_resume(resume_from_checkpoint, self.args.output_dir)
        if checkpoint is not None:
            self.restore_stream(checkpoint)
        return super().train(
            resume_from_checkpoint=checkpoint, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval, **kwargs
        )

    def restore_stream(self, checkpoint: str) -> None:
        """Load this process's stream position from `checkpoint` into the training stream."""
        path = os.path.join(checkpoint, STREAM_STATE_NAME.format(rank=self.args.process_index))
        if not os.path.isfile(path):
            raise LcmInputError(
                f"resume_from_checkpoint: expected the stream position {os.path.basename(path)} in {checkpoint} "
                "(written by a streaming run), got none"
            )
        with open(path) as handle:
            record = json.load(handle)
        if record.get("world_size") != self.args.world_size:
            raise LcmInputError(
                f"resume_from_checkpoint: expected {record.get('world_size')} processes (as the run that wrote "
                f"{checkpoint}), got {self.args.world_size}"
            )
        self.train_dataset.load_state_dict(record["state"])
        self._stream_state = record["state"]


def streaming_schedule(training_args) -> None:
    """Check and adapt `training_args` for a stream: ``max_steps`` required; ``momentum_steps`` defaults to
    ``max_steps // 10``; "epoch" evaluation / saving / logging become every ``max(1, max_steps // 10)`` steps
    (the stream never ends an epoch)."""
    from transformers.trainer_utils import IntervalStrategy

    if training_args.max_steps is None or training_args.max_steps <= 0:
        raise LcmInputError(
            f"--max_steps: expected a positive number of steps with --streaming true (a stream has no length), "
            f"got {training_args.max_steps}"
        )
    if getattr(training_args, "momentum_steps", None) is None:
        training_args.momentum_steps = training_args.max_steps // 10
        logger.info(f"--streaming: stage 1 lasts --momentum_steps {training_args.momentum_steps} (max_steps // 10)")
    if training_args.momentum_steps < 0:
        raise LcmInputError(f"--momentum_steps: expected a non-negative step count, got {training_args.momentum_steps}")
    every = max(1, training_args.max_steps // 10)
    for kind in ("eval", "save", "logging"):
        if getattr(training_args, f"{kind}_strategy") == IntervalStrategy.EPOCH:
            setattr(training_args, f"{kind}_strategy", IntervalStrategy.STEPS)
            setattr(training_args, f"{kind}_steps", every)
            logger.info(f"--streaming: {kind} every {every} steps instead of every epoch")


def pretrain_streaming(dataset_dirs: list[str], data_args, model_args, training_args,
                       resume_from_checkpoint=None) -> dict:
    """Multitask pretraining over streamed connectome datasets (:mod:`lcm_hf.training.streaming`).

    Parameters
    ----------
    dataset_dirs : list of str
        Published folders (parquet shards + card) with a ``timeseries`` column.
    data_args, model_args, training_args
        The script's options; ``training_args.max_steps`` is required, ``data_args.dataset_weights`` optional.
    resume_from_checkpoint : str or bool, optional
        A checkpoint of a streaming run (True: the newest in ``output_dir``); training continues from its
        stream position.

    Returns
    -------
    dict
        As :func:`lcm_hf.training.recipes.pretrain` (also in ``results.json``), with ``streaming`` details.
    """
    from ..data import LcmDataCollator, union_vocabulary
    from ..processing_lcm import LcmProcessor
    from .data import bei_columns, build_splits, declared_pseudo_labels
    from .recipes import _finish, pretrain_model
    from .streaming import StreamCollator, StreamSources, WindowStream

    streaming_schedule(training_args)
    check_stream_workers(data_args.stream_workers)  # before any data is read
    sources = StreamSources(dataset_dirs, data_args)
    categorical, continuous = bei_columns(data_args)
    pseudo = declared_pseudo_labels(data_args)
    vocabulary = union_vocabulary(
        sources.phenotypes(["subject_id", *categorical, *continuous]), categorical, continuous, pseudo,
        data_args.standardize_continuous,
    )
    # the one window + FC rule of the run: held-out windows, streamed windows, their FC and the saved contract
    processor = LcmProcessor(vocabulary=vocabulary, num_rois=sources.num_rois, window_size=data_args.window_size,
                             window_stride=data_args.window_stride, short_series=data_args.short_series)
    held_out = build_splits(sources.held_out(), vocabulary, data_args, pseudo, processor)
    scans = sources.train_scans(
        rank=training_args.process_index, world_size=training_args.world_size,
        weights=data_args.dataset_weights, seed=training_args.seed,
    )
    pseudo = {name: {b: v for b, v in declared.items() if b in vocabulary} for name, declared in pseudo.items()}
    train = WindowStream(scans, processor, seed=training_args.seed, keep=sources.is_training, pseudo_labels=pseudo)
    model = pretrain_model(sources.num_rois, vocabulary, model_args, training_args.seed)
    trainer = StreamingLcmTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=held_out["validation"],
        data_collator=StreamCollator(LcmDataCollator(processor)),
        readout_selection_metric=model_args.readout_selection_metric,
        stream_workers=data_args.stream_workers,
    )
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return _finish(
        trainer,
        {"train": None, **held_out},
        processor,
        {
            "datasets": list(sources.paths),
            "streaming": {
                "held_out_by_hash": sources.hashed,
                "dataset_weights": data_args.dataset_weights,
                "max_steps": training_args.max_steps,
                "momentum_steps": training_args.momentum_steps,
            },
            "data_args": asdict(data_args),
        },
        train_subjects=_streamed_subjects(sources, held_out),
    )


def _streamed_subjects(sources, held_out: dict) -> dict[str, set]:
    """``{dataset: subject ids}`` that trained: every subject of the folders but the held-out ones."""
    held = {(str(d), str(s)) for split in held_out.values() if split is not None
            for d, s in zip(split["dataset"], split["subject_id"])}
    return {name: {str(s) for s in table["subject_id"]} - {s for d, s in held if d == name}
            for name, table in sources.phenotypes(["subject_id"]).items()}


__all__ = ["STREAM_STATE_NAME", "StreamingLcmTrainer", "pretrain_streaming", "streaming_schedule"]
