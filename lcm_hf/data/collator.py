"""`LcmDataCollator`: dataset rows (dicts) -> ``{"connectivity": (B, N, N), "labels": (B, K)}``.

Rows may hold ``connectivity`` (N x N, fastest: precompute it once with
``add_connectivity``) or ``timeseries`` windows (T x N, cut by the processor: ``expand_windows``, the
streaming ``WindowStream``), whose FC the processor computes per batch (:meth:`LcmProcessor.connectivity`,
a group kind with its fitted reference). Labels come from a
``labels`` column when present (``add_labels``), else from the phenotype columns through the
vocabulary. Nothing else is passed through by default, because ``Trainer`` calls
``model(**batch)``; subject ids stay in the dataset's ``subject_id`` column for subject-level
metrics (prediction i belongs to row i of the evaluation set).

With the HF ``Trainer`` either precompute ``connectivity`` and ``labels`` (then the default
``remove_unused_columns=True`` is fine) or pass ``remove_unused_columns=False`` so the
phenotype / time-series columns reach the collator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..connectivity_checks_lcm import check_connectivity_values
from ..errors_lcm import LcmInputError, LcmInputTypeError
from ..vocabulary_lcm import BeiVocabulary


class LcmDataCollator:
    """Collate connectome rows into model-ready tensors.

    Parameters
    ----------
    processor_or_vocabulary : LcmProcessor, BeiVocabulary or None
        Gives the vocabulary (labels) and, for a processor, ``num_rois`` and the FC of time-series rows
        (its kind, Fisher z and fitted group reference; rows longer than its window are refused: cut them with
        ``expand_windows(dataset, processor)``).
    kind : str, optional
        Without a processor: the (non-group) connectivity kind of time-series rows (default "correlation").
    fisher_z : bool, optional
        Without a processor: Fisher z (default False).
    num_rois : int, optional
        Expected N; checked when given (or taken from the processor).
    pass_through : sequence of str
        Extra row keys to return as lists (e.g. ``("subject_id",)``); default none.
    beis : list of dict, optional
        The model's BEIs (``config.beis``), to check label values against (default: the vocabulary's).
    validate : bool
        Check the values once per batch here, so the training step reads none (default True):
        finite ``connectivity`` within +-1e6 (blank matrices warned about), finite labels and class indices
        in range (with ``beis`` or a vocabulary). Errors name the row's ``subject_id``.

    Returns (``__call__``)
    ----------------------
    dict with ``connectivity`` float32 (B, N, N) and, when a vocabulary or a ``labels`` column
    exists, ``labels`` float32 (B, K) (NaN where missing).
    """

    def __init__(self, processor_or_vocabulary=None, *, kind: str | None = None, fisher_z: bool | None = None,
                 num_rois: int | None = None, pass_through: Sequence[str] = (), beis: Sequence[Mapping] | None = None,
                 validate: bool = True):
        from .transforms import connectivity_processor

        vocabulary, processor = processor_or_vocabulary, None
        if vocabulary is not None and not isinstance(vocabulary, BeiVocabulary):
            if not hasattr(vocabulary, "vocabulary"):
                raise LcmInputTypeError(
                    f"expected an LcmProcessor, a BeiVocabulary or None, got {type(vocabulary).__name__}")
            processor = vocabulary
            if kind is not None and kind != processor.kind:
                raise LcmInputError(f"expected the connectivity kind of the processor's contract ({processor.kind!r}), "
                                    f"got kind={kind!r} as well: pass a processor of that kind")
            vocabulary = processor.vocabulary
            num_rois = num_rois or processor.num_rois
        self.processor = connectivity_processor(processor or kind, fisher_z, num_rois=num_rois)
        self.vocabulary = vocabulary
        self.num_rois = num_rois
        self.pass_through = tuple(pass_through)
        self.beis = list(beis) if beis is not None else (vocabulary.to_config() if vocabulary is not None else None)
        self.validate = validate

    def __call__(self, features: Sequence[Mapping]) -> dict:
        if not features:
            raise LcmInputError("expected at least one row to collate, got none")
        first = features[0]
        ids = [f.get("subject_id", i) for i, f in enumerate(features)]
        if "connectivity" in first:
            fc = torch.from_numpy(np.stack([np.asarray(f["connectivity"], dtype=np.float32) for f in features]))
        elif "timeseries" in first:
            series = [np.asarray(f["timeseries"], dtype=np.float32) for f in features]
            series = [s[: int(f["window_length"])] if f.get("window_length") is not None else s  # no padding
                      for s, f in zip(series, features)]
            size = self.processor.window_size
            long = next((i for i, s in enumerate(series) if size is not None and s.shape[0] > size), None)
            if long is not None:
                raise LcmInputError(f"row of subject {ids[long]!r}: expected a window of at most {size} TRs (the "
                                    f"processor's window_size), got {series[long].shape[0]} TRs: cut the scans into "
                                    "windows first (expand_windows(dataset, processor))")
            fc = self.processor.connectivity(series, subject_ids=ids).float()
        else:
            raise LcmInputError(f"expected rows with 'connectivity' or 'timeseries', got keys {sorted(first)}")
        if self.num_rois is not None and fc.shape[1:] != (self.num_rois, self.num_rois):
            raise LcmInputError(
                f"expected connectivity of shape (B, {self.num_rois}, {self.num_rois}), got {tuple(fc.shape)}")
        batch = {"connectivity": fc}
        if "labels" in first:
            batch["labels"] = torch.from_numpy(np.stack([np.asarray(f["labels"], dtype=np.float32) for f in features]))
        elif self.vocabulary is not None:
            batch["labels"] = self.vocabulary.encode(list(features))
        if self.validate:
            self._check_values(batch, ids)
        for key in self.pass_through:
            batch[key] = [f.get(key) for f in features]
        return batch

    def _check_values(self, batch: dict, ids: Sequence) -> None:
        from ..modeling_lcm import check_label_values

        check_connectivity_values(batch["connectivity"], subject_ids=ids)
        labels = batch.get("labels")
        if labels is None:
            return
        if self.beis is not None and labels.shape[-1] == len(self.beis):
            check_label_values(labels, self.beis)
        elif torch.isinf(labels).any():
            raise LcmInputError("expected finite `labels` (NaN for missing), got inf")


__all__ = ["LcmDataCollator"]
