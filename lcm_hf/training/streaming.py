"""Streaming pretraining data: published connectome sets read as `datasets.IterableDataset`s, never loaded whole.

What ``training/pretrain.py --streaming true`` trains on (:func:`lcm_hf.training.streaming_recipe.pretrain_streaming`):

- **Sources**: each ``--dataset_dirs`` folder (parquet shards + card, `publish_dataset` / `build_dataset.py`) is
  opened with ``datasets.load_dataset(folder, split="train", streaming=True)``.
- **Shards -> processes**: ``datasets.distributed.split_dataset_by_node`` gives each process its shards (a warning
  when a dataset's shard count is not a multiple of the world size: every process then reads every shard and
  keeps one example in `world_size`). Inside a process its shards are read round-robin in ``MAX_LANES //
  world_size`` lanes (``interleave_datasets`` over ``IterableDataset.shard``s), so memory does not grow with the
  shard count, and a global batch holds the same scans whatever the process count when the world size divides
  the lane count and the shards are equally long.
- **Several datasets**: ``interleave_datasets`` with ``--dataset_weights`` as sampling probabilities (smaller
  datasets repeat until every dataset has been seen: ``all_exhausted``), round-robin without weights.
- **Windows**: cut on the fly by :class:`WindowStream` through the run's `LcmProcessor` (the one window rule,
  :meth:`LcmProcessor.window_spans`): ``floor((T - window) / stride) + 1`` windows per scan, shifted by a random
  offset in ``[0, slack]`` drawn from ``(seed, pass, dataset, subject, scan)``: random crops that are
  reproducible without any random state to save; a scan shorter than a window follows ``--short_series``, as in
  the in-memory data and at prediction. The stream never ends (pass after pass), so ``--max_steps`` sets the
  length of training. FC is computed by the collator (`LcmDataCollator`) through the same processor.
- **Held-out subjects**: a folder's published ``validation`` / ``test`` splits when it has them, else a subject
  is held out by a hash of ``(split_seed, dataset, subject_id)``: the same answer in every process and every
  pass, without reading the data first. Held-out scans are materialised in memory (windowed, FC precomputed).
- **Resume**: every window carries the stream position after it (a scan-stream ``IterableDataset.state_dict()``,
  taken every :data:`STATE_EVERY` scans, the windows cut since, the pass); the trainer keeps the position of the
  last batch it trained on and writes it into each checkpoint (``stream_state-<rank>.json``); resuming loads it
  (``load_state_dict``), so training continues with the next window, as if it had not stopped.
- **Speed**: the stream is decoded, windowed and turned into FC in one DataLoader worker process
  (``--stream_workers 1``, the default) while the model trains; the position travels with each batch, so it stays
  exact. Parquet shards written by lcm-hf keep the time series out of dictionary encoding (3x faster to decode).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings

import numpy as np
import torch

from ..errors_lcm import LcmInputError
from .data import _named, unique_dataset_names

logger = logging.getLogger(__name__)

STATE_KEY = "_stream_state"
"""The key of every streamed window that holds the stream position after it."""
MAX_LANES = 8
"""Shards of one dataset read at once, round-robin, over all processes (memory: one row group per lane)."""
STATE_EVERY = 32
"""Scans between two snapshots of the scan stream's state (a resume re-reads at most this many scans)."""
NAME_BLOCK = 32
"""Rows per block when the ``dataset`` column is set (held in memory per lane)."""


def skip_shutdown_sleep() -> None:
    """Stop `datasets` sleeping 5 s whenever an interleaved parquet stream ends a pass.

    The sleep works around apache/arrow#45214, which `datasets` itself treats as fixed after pyarrow 24 (it
    applies its other workaround only up to 24.0.0); with a newer pyarrow the pause is pure waste at every pass.
    """
    import datasets
    import pyarrow
    from packaging.version import Version

    if Version(pyarrow.__version__) > Version("24.0.0"):
        datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = 0


def _hash_unit(*parts) -> float:
    """A deterministic number in [0, 1) from `parts` (md5; the same in every process and Python run)."""
    digest = hashlib.md5("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def holdout_split(dataset: str, subject_id, validation_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """"train", "validation" or "test" for one subject, by a hash of ``(seed, dataset, subject_id)``.

    >>> holdout_split("site_a", "sub-01", 0.0, 0.0)
    'train'
    """
    unit = _hash_unit(seed, dataset, subject_id)
    if unit < test_fraction:
        return "test"
    if unit < test_fraction + validation_fraction:
        return "validation"
    return "train"


def published_split_names(folder: str) -> list[str]:
    """The splits a published folder declares (its card's ``configs``), without reading any data."""
    import datasets as hfds

    return list(hfds.load_dataset(folder, streaming=True).keys())


def open_stream(folder: str, split: str = "train", columns: list[str] | None = None, filters=None):
    """One split of a published folder as a `datasets.IterableDataset` (optionally only `columns`)."""
    import datasets as hfds

    kwargs = {}
    if columns is not None:
        kwargs["columns"] = list(columns)
    if filters is not None:
        kwargs["filters"] = filters
    return hfds.load_dataset(folder, split=split, streaming=True, **kwargs)


class StreamSources:
    """The ``--dataset_dirs`` of a streaming run: names, splits, feature schema and held-out subjects.

    Parameters
    ----------
    paths : list of str
        Published connectome folders (parquet shards + README card) holding a ``timeseries`` column.
    data_args : LcmDataArguments
        ``validation_fraction``, ``test_fraction``, ``split_seed`` for folders without published held-out splits.
    """

    def __init__(self, paths: list[str], data_args):
        from datasets import Array2D

        if not paths:
            raise LcmInputError("--dataset_dirs: expected published dataset folders with --streaming true, got none")
        missing = [path for path in paths if not os.path.isdir(path)]
        if missing:
            raise LcmInputError(f"--dataset_dirs: expected existing dataset folders, got no folder at {missing[0]!r}")
        skip_shutdown_sleep()
        self.paths = {name: path for name, path in zip(unique_dataset_names(paths), paths)}
        self.data_args = data_args
        self.splits = {name: published_split_names(path) for name, path in self.paths.items()}
        for name, names in self.splits.items():
            if "train" not in names:
                raise LcmInputError(f"--dataset_dirs: {self.paths[name]!r}: expected a 'train' split, got {names}")
        self.features = {name: open_stream(path).features for name, path in self.paths.items()}
        for name, features in self.features.items():
            if "timeseries" not in features:
                raise LcmInputError(
                    f"--streaming: expected a 'timeseries' column in {self.paths[name]!r} (windows are cut from "
                    f"time series), got columns {list(features)}"
                )
            if not isinstance(features["timeseries"], Array2D):
                raise LcmInputError(
                    f"--streaming: expected the 'timeseries' column of {self.paths[name]!r} stored as an Array2D "
                    f"(T, N) (as publish_dataset / build_dataset.py write it), got {features['timeseries']}"
                )
        rois = {name: features["timeseries"].shape[-1] for name, features in self.features.items()}
        if len(set(rois.values())) != 1:
            raise LcmInputError(f"expected the same number of ROIs in every dataset, got {rois}")
        self.num_rois = next(iter(rois.values()))
        self.hashed = [name for name, names in self.splits.items() if set(names) == {"train"}]
        if self.hashed:
            for flag in ("validation_fraction", "test_fraction"):
                value = getattr(data_args, flag)
                if not 0 < value < 1:
                    raise LcmInputError(f"--{flag}: expected a fraction in (0, 1), got {value}")

    def split_of(self, dataset: str, subject_id) -> str:
        """The split of a subject of a hash-split dataset ("train" for published-split datasets)."""
        if dataset not in self.hashed:
            return "train"
        args = self.data_args
        return holdout_split(dataset, subject_id, args.validation_fraction, args.test_fraction, args.split_seed)

    def is_training(self, dataset: str, subject_id) -> bool:
        """Whether a subject trains (not held out): the `keep` rule of :class:`WindowStream` (picklable)."""
        return self.split_of(dataset, subject_id) == "train"

    def phenotypes(self, columns: list[str]) -> dict:
        """``{name: Dataset}`` of every row's `columns` (those the dataset has) over all splits: the BEI values
        the vocabulary is fitted on, read without the time series."""
        import datasets as hfds

        tables = {}
        for name, path in self.paths.items():
            present = [c for c in columns if c in self.features[name]]
            rows = []
            for split in self.splits[name]:
                rows.extend(open_stream(path, split, columns=present or ["subject_id"]))
            features = hfds.Features({c: self.features[name][c] for c in present or ["subject_id"]})
            tables[name] = hfds.Dataset.from_list(rows, features=features)
        return tables

    def held_out(self) -> dict[str, dict]:
        """``{"validation": {name: Dataset}, "test": {name: Dataset}}``: the held-out scans, in memory."""
        import datasets as hfds

        parts = {"validation": {}, "test": {}}
        for name, path in self.paths.items():
            features = self.features[name]
            if name not in self.hashed:
                for split in ("validation", "test"):
                    if split in self.splits[name]:
                        parts[split][name] = _named(hfds.Dataset.from_list(list(open_stream(path, split)),
                                                                           features=features), name)
                continue
            subjects = {row["subject_id"] for row in open_stream(path, columns=["subject_id"])}
            chosen = sorted(s for s in subjects if self.split_of(name, s) != "train")
            rows = list(open_stream(path, filters=[("subject_id", "in", chosen)])) if chosen else []
            for split in ("validation", "test"):  # one read of the data for both splits
                kept = [row for row in rows if self.split_of(name, row["subject_id"]) == split]
                if kept:
                    parts[split][name] = _named(hfds.Dataset.from_list(kept, features=features), name)
        empty = [split for split, named in parts.items() if not named]
        if empty:
            raise LcmInputError(
                f"expected held-out subjects in every split, got none in {empty}: give more subjects, larger "
                "--validation_fraction / --test_fraction, or publish the datasets with those splits"
            )
        return parts

    def train_scans(self, rank: int = 0, world_size: int = 1, weights: list[float] | None = None, seed: int = 0,
                    lanes: int = MAX_LANES):
        """This process's training scans: one `datasets.IterableDataset` over all datasets (see the module
        docstring: shards split by node, read round-robin, datasets interleaved with `weights`).

        `lanes`: shards read at once over all processes (each lane holds one decoded parquet row group, so memory
        does not grow with the shard count); a process reads ``lanes // world_size`` lanes round-robin."""
        from datasets import List, Value, interleave_datasets
        from datasets.distributed import split_dataset_by_node

        names = list(self.paths)
        if weights is not None:
            if len(weights) != len(names) or any(not w > 0 for w in weights):
                raise LcmInputError(
                    f"--dataset_weights: expected {len(names)} positive weights (one per --dataset_dirs), got {weights}"
                )
            total = float(sum(weights))
            weights = [w / total for w in weights]
        streams = []
        for name in names:
            stream = open_stream(self.paths[name])
            stream = stream.select_columns([c for c in stream.features if c != "split"])
            features = stream.features.copy()
            features["dataset"] = Value("string")  # known features: interleaving need not read rows to infer them
            # the Array2D's storage (nested lists, zero-copy): single rows then carry no extension type to rebuild
            features["timeseries"] = List(List(Value(features["timeseries"].dtype)))
            # done in blocks of rows before the lanes split the stream into single rows (cheaper per row; small
            # blocks, since a block is held in memory per lane)
            stream = stream.with_format("arrow").map(_scan_columns(name), batched=True, batch_size=NAME_BLOCK,
                                                     features=features)
            if world_size > 1:
                if stream.n_shards % world_size:
                    warnings.warn(
                        f"dataset {name!r} has {stream.n_shards} shards, not a multiple of the {world_size} "
                        "processes: every process reads every shard and keeps 1 example in "
                        f"{world_size} (publish it with a shard count that the process count divides)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
            count = max(1, min(stream.n_shards, lanes // world_size))
            if count > 1:  # lane i of this process: its shards i, i + count, ... read in order
                parts = [stream.shard(num_shards=count, index=i, contiguous=False) for i in range(count)]
                stream = interleave_datasets(parts, stopping_strategy="all_exhausted_without_replacement")
            streams.append(stream)
        if len(streams) == 1:
            return streams[0]
        return interleave_datasets(
            streams,
            probabilities=weights,
            seed=seed,
            stopping_strategy="all_exhausted" if weights is not None else "all_exhausted_without_replacement",
        )


def _scan_columns(name: str):
    """An arrow-batch map setting the ``dataset`` column to `name` and the ``timeseries`` column to its Array2D's
    storage (rows stay arrow: no Python conversion)."""
    import pyarrow as pa

    def set_columns(table):
        series = table.column("timeseries")
        storage = [chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk for chunk in series.chunks]
        table = table.set_column(table.column_names.index("timeseries"), "timeseries",
                                 pa.chunked_array(storage, type=storage[0].type) if storage else series)
        column = pa.array([name] * len(table), pa.string())
        if "dataset" in table.column_names:
            return table.set_column(table.column_names.index("dataset"), "dataset", column)
        return table.append_column("dataset", column)

    return set_columns


def arrow_row(table, column: str = "timeseries") -> dict:
    """One row of an arrow-formatted stream as a dict: `column` ((T, N): an Array2D or its nested-list storage) as
    a numpy array of its stored dtype, the other columns as Python values."""
    import pyarrow as pa

    row = {name: table.column(name)[0].as_py() for name in table.column_names if name != column}
    array = table.column(column)
    array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    steps = array.flatten()
    row[column] = steps.flatten().to_numpy(zero_copy_only=False).reshape(len(steps), -1)
    return row


class WindowStream(torch.utils.data.IterableDataset):
    """Training windows cut on the fly from a stream of scans; endless (pass after pass); resumable.

    Parameters
    ----------
    scans : datasets.IterableDataset
        Rows with ``timeseries`` (T, N), ``subject_id``, ``dataset`` and phenotype columns
        (:meth:`StreamSources.train_scans`).
    window_size : LcmProcessor or int
        The processor whose contract cuts the windows (:meth:`LcmProcessor.window_spans`: size, stride,
        short-series policy, the random offsets drawn from the scan's rng), or a window size for a processor
        built from it, `stride` and `short_series` (``lcm_hf.data.transforms.window_processor``).
    stride : int, optional
        With an int `window_size`: step between windows (default: non-overlapping).
    short_series : {"drop", "pad"}, optional
        With an int `window_size`: scans shorter than one window (default "drop").
    seed : int
        Seed of the random crop offsets.
    keep : callable, optional
        ``keep(dataset, subject_id) -> bool``: scans of other subjects are skipped (held out).
    pseudo_labels : dict, optional
        ``{dataset: {bei: value}}`` constants filled where a row has no value.
    random_crops : bool
        Shift each scan's windows by a random offset (default True).
    state_every : int
        Scans between two snapshots of the scan stream's state (default :data:`STATE_EVERY`).

    Each yielded row holds ``timeseries`` (window_length, N) float32 (``window_size`` TRs, or all the TRs of a
    short scan the contract pads), ``window_length``, the scan's other columns and ``_stream_state`` (the position
    after this window: :meth:`load_state_dict` takes it).
    """

    def __init__(self, scans, window_size, stride: int | None = None, *, short_series: str | None = None, seed: int = 0,
                 keep=None, pseudo_labels: dict | None = None, random_crops: bool = True,
                 state_every: int = STATE_EVERY):
        from ..data.transforms import window_processor

        if not hasattr(window_size, "window_spans") and (
            isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 2
        ):
            raise LcmInputError(f"--window_size: expected at least 2 TRs, got {window_size}")
        self.scans = scans.with_format("arrow")  # rows decoded by arrow_row: no per-value Python conversion
        self.processor = window_processor(window_size, stride, short_series, num_rois=1)
        self.window_size = self.processor.window_size
        self.seed = seed
        self.keep = keep
        self.pseudo_labels = pseudo_labels or {}
        self.random_crops = random_crops
        self.state_every = int(state_every)
        self._start = None  # {"pass", "scans", "skip"} set by load_state_dict

    def load_state_dict(self, state: dict) -> None:
        """Continue after the window whose ``_stream_state`` is `state` at the next iteration."""
        if not isinstance(state, dict) or not {"pass", "scans", "skip"} <= set(state):
            raise LcmInputError(f"expected a stream state with 'pass', 'scans' and 'skip', got {state!r}")
        self._start = copy.deepcopy(state)

    def _windows(self, row: dict, pass_index: int):
        series = row["timeseries"]
        key = (row.get("dataset"), row.get("subject_id"), row.get("scan_id"))
        rng = np.random.default_rng([self.seed, pass_index, int(_hash_unit(*key) * 2**63)]) if self.random_crops else None
        fills = self.pseudo_labels.get(row.get("dataset"), {})
        base = {k: v for k, v in row.items() if k != "timeseries"}
        for bei, value in fills.items():
            current = base.get(bei)
            if current is None or (isinstance(current, float) and np.isnan(current)):
                base[bei] = value
        for start, length in self.processor.window_spans(series, rng=rng):
            yield {**base, "timeseries": series[start : start + length].astype(np.float32), "window_length": length}

    def __iter__(self):
        start, self._start = self._start, None
        pass_index = start["pass"] if start else 0
        while True:
            resumed = start is not None
            self.scans.set_epoch(pass_index)
            anchor = start["scans"] if start else None  # scan-stream state the window count `cut` starts from
            skip = start["skip"] if start else 0  # windows after `anchor` already trained on
            if anchor is not None:
                self.scans.load_state_dict(copy.deepcopy(anchor))
            start = None
            produced = False
            cut = scans_read = 0
            for table in self.scans:
                row = arrow_row(table)
                if self.keep is None or self.keep(row.get("dataset"), row.get("subject_id")):
                    for window in self._windows(row, pass_index):
                        cut += 1
                        if cut <= skip:
                            continue
                        produced = True
                        window[STATE_KEY] = {"pass": pass_index, "scans": anchor, "skip": cut}
                        yield window
                scans_read += 1
                if scans_read >= self.state_every and cut >= skip:  # a new snapshot: later positions count from here
                    anchor, cut, skip, scans_read = self.scans.state_dict(), 0, 0, 0
            if not produced and not resumed:
                raise LcmInputError(
                    f"expected training windows, got none: no training scan has {self.window_size} TRs "
                    f"(pass a smaller --window_size, or --short_series pad) or every subject is held out"
                )
            pass_index += 1


class StreamCollator:
    """`LcmDataCollator` for streamed windows: FC from the time series (by its processor), labels from the
    vocabulary, and the stream position after the batch's last window as ``stream_state`` (popped by the trainer)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features):
        state = features[-1].get(STATE_KEY) if features else None
        batch = self.collator(features)
        if state is not None:
            batch["stream_state"] = state
        return batch


__all__ = [
    "STATE_EVERY",
    "STATE_KEY",
    "StreamCollator",
    "StreamSources",
    "WindowStream",
    "holdout_split",
    "open_stream",
    "published_split_names",
    "skip_shutdown_sleep",
]
