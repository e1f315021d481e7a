"""`LcmProcessor`: ROI time series (or ready FC) + phenotypes -> model inputs, and back.

Imports only numpy, torch, transformers and sibling modules, so it ships as Hub remote code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .connectivity import CONNECTIVITY_KINDS, compute_connectivity
from .vocabulary_lcm import VOCABULARY_NAME, BeiVocabulary


class LcmProcessor(FeatureExtractionMixin):
    """Turn ROI time series or connectivity matrices, plus phenotypes, into LCM inputs.

    Parameters
    ----------
    vocabulary : BeiVocabulary or list of dict, optional
        The BEIs (``LcmConfig.beis`` layout). Needed for ``labels`` and :meth:`post_process`.
    num_rois : int
        N, the number of ROIs the model expects (116 for AAL-116).
    kind : str
        Connectivity kind for time series input (see ``lcm_hf.connectivity.CONNECTIVITY_KINDS``);
        ``"correlation"`` (Pearson) as in the paper.
    fisher_z : bool
        Apply the Fisher z-transform (the paper feeds plain Pearson FC; default False).

    Examples
    --------
    >>> processor = LcmProcessor(vocabulary=vocab, num_rois=116)
    >>> batch = processor(timeseries=[ts_a, ts_b], phenotypes=[{"sex": "F"}, {"sex": "M"}])
    >>> batch["connectivity"].shape, batch["labels"].shape      # (2, 116, 116), (2, K)
    >>> processor.post_process(model(**batch))                  # [{"sex": {"label": ..., "score": ...}}, ...]
    """

    model_input_names = ["connectivity"]

    def __init__(
        self,
        vocabulary: BeiVocabulary | Sequence[Mapping] | None = None,
        num_rois: int = 116,
        kind: str = "correlation",
        fisher_z: bool = False,
        **kwargs,
    ):
        beis = kwargs.pop("beis", None)
        super().__init__(**kwargs)
        if vocabulary is None and beis is not None:
            vocabulary = beis
        if vocabulary is not None and not isinstance(vocabulary, BeiVocabulary):
            vocabulary = BeiVocabulary(vocabulary)
        if isinstance(num_rois, bool) or not isinstance(num_rois, int) or num_rois < 1:
            raise ValueError(f"expected `num_rois` to be a positive int, got {num_rois!r}")
        if kind not in CONNECTIVITY_KINDS:
            raise ValueError(f"expected `kind` to be one of {list(CONNECTIVITY_KINDS)}, got {kind!r}")
        self._vocabulary = vocabulary
        self.num_rois = num_rois
        self.kind = kind
        self.fisher_z = bool(fisher_z)

    @property
    def vocabulary(self) -> BeiVocabulary | None:
        return self._vocabulary

    @vocabulary.setter
    def vocabulary(self, value) -> None:
        self._vocabulary = value if value is None or isinstance(value, BeiVocabulary) else BeiVocabulary(value)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_vocabulary", None)
        output["beis"] = self._vocabulary.to_list() if self._vocabulary is not None else None
        return output

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs):
        """Write ``preprocessor_config.json`` (BEIs included) and ``bei_vocabulary.json``."""
        files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        if self._vocabulary is not None:
            files = list(files) + [self._vocabulary.save_pretrained(save_directory)]
        return files

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a directory (or Hub id) holding ``preprocessor_config.json``.

        When the directory also has ``bei_vocabulary.json``, that file is the vocabulary.
        """
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        vocab_file = os.path.join(os.fspath(pretrained_model_name_or_path), VOCABULARY_NAME)
        if "vocabulary" not in kwargs and os.path.isfile(vocab_file):
            processor.vocabulary = BeiVocabulary.from_pretrained(vocab_file)
        return processor

    # ------------------------------------------------------------------ forward
    def __call__(
        self,
        timeseries=None,
        connectivity=None,
        phenotypes=None,
        *,
        lengths=None,
        subject_ids: Sequence[str] | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Build a model-ready batch.

        Parameters
        ----------
        timeseries : array-like (B, T, N), or sequence of B array-likes (T_i, N), optional
            ROI time series; FC is computed with ``self.kind`` (and Fisher z if set).
        connectivity : array-like (B, N, N) or (N, N), optional
            Ready connectivity matrices (used as given). Exactly one of the two.
        phenotypes : dict or sequence of B dicts, optional
            BEI values per sample; adds ``labels`` (B, K) with NaN for missing values.
        lengths : array-like of int (B,), optional
            Valid time points of a zero-padded (B, T, N) ``timeseries``.
        subject_ids : sequence of str, optional
            Names for warnings and errors.
        return_tensors : {"pt", "np", None}

        Returns
        -------
        BatchFeature
            ``connectivity`` float32 (B, N, N) and, with phenotypes, ``labels`` float32 (B, K).
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}; expected timeseries, connectivity, phenotypes")
        if (timeseries is None) == (connectivity is None):
            raise ValueError("expected exactly one of `timeseries` or `connectivity`, got "
                             + ("both" if timeseries is not None else "neither"))
        if timeseries is not None:
            if isinstance(timeseries, (np.ndarray, torch.Tensor)) and timeseries.ndim == 2:
                timeseries = timeseries[None]
            fc = compute_connectivity(
                timeseries, kind=self.kind, lengths=lengths, fisher=self.fisher_z, subject_ids=subject_ids
            )
        else:
            fc = connectivity if isinstance(connectivity, torch.Tensor) else torch.as_tensor(np.asarray(connectivity))
            fc = fc.float()
            if fc.ndim == 2:
                fc = fc[None]
        fc = fc.to(torch.float32)
        if fc.ndim != 3 or fc.shape[1:] != (self.num_rois, self.num_rois):
            raise ValueError(
                f"expected connectivity of shape (B, {self.num_rois}, {self.num_rois}), got {tuple(fc.shape)}"
            )
        data: dict[str, Any] = {"connectivity": fc}
        if phenotypes is not None:
            if self._vocabulary is None:
                raise ValueError("expected a processor with a `vocabulary` to encode phenotypes, got none")
            if isinstance(phenotypes, Mapping):
                phenotypes = [phenotypes]
            labels = self._vocabulary.encode(phenotypes)
            if labels.shape[0] != fc.shape[0]:
                raise ValueError(f"expected {fc.shape[0]} phenotype rows (one per sample), got {labels.shape[0]}")
            data["labels"] = labels
        if return_tensors in ("np", None):
            data = {k: v.numpy() for k, v in data.items()}
        elif return_tensors != "pt":
            raise ValueError(f"expected return_tensors 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature(data=data, tensor_type=return_tensors)

    def post_process(self, outputs) -> list[dict]:
        """Model outputs -> per-sample ``{bei: {"label", "score", "probabilities"} | {"value"}}``.

        Parameters
        ----------
        outputs : model output with ``logits`` (B, P), a dict with ``"logits"``, or a tensor (B, P)

        Returns
        -------
        list of dict, one per sample
        """
        from .modeling_lcm import logits_to_bei_predictions

        if self._vocabulary is None:
            raise ValueError("expected a processor with a `vocabulary` to name predictions, got none")
        logits = outputs
        if not isinstance(outputs, torch.Tensor):
            logits = outputs["logits"] if isinstance(outputs, Mapping) else getattr(outputs, "logits", None)
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"expected model outputs with a `logits` tensor, got {type(outputs).__name__}")
        return logits_to_bei_predictions(logits, self._vocabulary.to_config())


__all__ = ["LcmProcessor"]
