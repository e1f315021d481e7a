"""`LcmProcessor`: the preprocessing contract of a model (``preprocessor_config.json``): atlas, ordered ROI labels,
TR, windows (size, stride, short-series policy), FC kind, Fisher z and the reference of a group-fitted kind
(``tangent``, fitted once). Inference cuts a subject's series into the training windows and
:meth:`LcmProcessor.post_process` averages the window predictions per subject. The model config is the one
source of truth for the BEIs. Imports only numpy, torch, transformers, safetensors and siblings (Hub remote code).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin

from .connectivity_checks_lcm import check_connectivity_values
from .connectivity_lcm import CONNECTIVITY_KINDS, compute_connectivity, fisher_z
from .errors_lcm import LcmInputError, LcmInputTypeError
from .group_connectivity_lcm import GROUP_KINDS, fit_tangent_reference, tangent_connectivity
from .readout_lcm import logits_to_bei_predictions
from .saving_lcm import staged_save
from .vocabulary_lcm import VOCABULARY_NAME, BeiVocabulary
from .windows_lcm import (
    DEFAULT_SHORT_SERIES,
    SHORT_SERIES_POLICIES,
    censored_rows,
    check_window_spec,
    sliding_windows,
    valid_volumes,
    window_spans,
)

REFERENCE_NAME = "connectivity_reference.safetensors"


def bei_differences(expected: Sequence[Mapping], given: Sequence[Mapping], expected_name: str, given_name: str):
    """What differs between two BEI lists (names, order, kind, classes), or None when they agree.

    Returns
    -------
    str or None
        e.g. ``"the BEI order differs: config.json has ['sex', 'age'], the processor ['age', 'sex']"``.
    """
    names_a, names_b = [b["name"] for b in expected], [b["name"] for b in given]
    if names_a != names_b:
        what = "order" if sorted(names_a) == sorted(names_b) else "names"
        return f"the BEI {what} differs: {expected_name} has {names_a}, {given_name} {names_b}"
    for a, b in zip(expected, given):
        for key in ("kind", "classes"):
            if a.get(key) != b.get(key):
                return f"BEI {a['name']!r} {key} differs: {expected_name} has {a.get(key)}, {given_name} {b.get(key)}"
    return None


def _as_series(item, index: int, subject_ids) -> torch.Tensor:
    x = item if isinstance(item, torch.Tensor) else torch.as_tensor(np.asarray(item, dtype=np.float32))
    if x.ndim != 2:
        name = subject_ids[index] if subject_ids is not None and index < len(subject_ids) else index
        raise LcmInputError(f"expected time series of shape (T, N) for subject {name!r}, got {tuple(x.shape)}")
    return x.to(torch.float32)


class LcmProcessor(FeatureExtractionMixin):
    """Turn ROI time series or connectivity matrices, plus phenotypes, into LCM inputs; name the outputs.

    Parameters
    ----------
    vocabulary : BeiVocabulary or list of dict, optional
        The BEIs (``LcmConfig.beis`` layout). Needed for ``labels`` and :meth:`post_process`.
    num_rois : int
        N, the number of ROIs the model expects (116 for AAL-116).
    kind : str
        Connectivity kind (``lcm_hf.connectivity_lcm.CONNECTIVITY_KINDS``); ``"correlation"`` (Pearson) as in the
        paper. ``"tangent"`` needs a reference fitted once with :meth:`fit`.
    fisher_z : bool
        Apply the Fisher z-transform (the paper feeds plain Pearson FC; default False).
    atlas : str, optional
        Name of the parcellation (e.g. ``"aal"``, ``"power_2011"``).
    roi_labels : list of str, optional
        The N ROI labels in the model's column order; inputs with other labels or another order are refused.
    repetition_time : float, optional
        TR of the training data in seconds; another TR at inference is a warning.
    window_size, window_stride : int, optional
        The windows in TRs (stride default: ``window_size``, non-overlapping): the one window rule
        (:mod:`lcm_hf.windows_lcm`) that training data, streaming, the collator, prediction and
        embeddings all cut through :meth:`split_windows` / :meth:`window_spans`. A tail shorter than a window is
        dropped, and so is a window holding a censored volume (a row of NaN, read with
        ``censored_volumes="drop"``); FC of a whole series uses its valid volumes. None (the default of a bare
        processor, e.g. for ready connectivity): one FC per whole series; the training scripts record
        ``--window_size`` (default
        :data:`~lcm_hf.windows_lcm.DEFAULT_WINDOW_SIZE`).
    short_series : {"drop", "pad"}
        A series shorter than one window, the same in training and prediction: ``"drop"`` (training leaves it
        out, prediction refuses it with a ``ValueError``) or ``"pad"`` (one window of all its TRs in both).

    Examples
    --------
    >>> processor = LcmProcessor(vocabulary=vocab, num_rois=116, window_size=90)
    >>> batch = processor(timeseries=[ts_a, ts_b])        # connectivity (W, 116, 116), subject_index (W,)
    >>> out = model(connectivity=batch["connectivity"])
    >>> processor.post_process(out, subject_index=batch["subject_index"])   # one dict per subject
    """

    model_input_names = ["connectivity"]

    def __init__(
        self,
        vocabulary: BeiVocabulary | Sequence[Mapping] | None = None,
        num_rois: int = 116,
        kind: str = "correlation",
        fisher_z: bool = False,
        atlas: str | None = None,
        roi_labels: Sequence[str] | None = None,
        repetition_time: float | None = None,
        window_size: int | None = None,
        window_stride: int | None = None,
        short_series: str = DEFAULT_SHORT_SERIES,
        **kwargs,
    ):
        beis = kwargs.pop("beis", None)
        kwargs.pop("group_reference_file", None)
        super().__init__(**kwargs)
        if vocabulary is None and beis is not None:
            vocabulary = beis
        if isinstance(num_rois, bool) or not isinstance(num_rois, int) or num_rois < 1:
            raise LcmInputError(f"expected `num_rois` to be a positive int, got {num_rois!r}")
        if kind not in CONNECTIVITY_KINDS:
            raise LcmInputError(f"expected `kind` to be one of {list(CONNECTIVITY_KINDS)}, got {kind!r}")
        for name, value in (("window_size", window_size), ("window_stride", window_stride)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise LcmInputError(f"expected `{name}` to be a positive int or None, got {value!r}")
        if window_stride is not None and window_size is None:
            raise LcmInputError(f"expected `window_size` with `window_stride`, got window_stride={window_stride}")
        if short_series not in SHORT_SERIES_POLICIES:
            raise LcmInputError(f"expected `short_series` to be one of {list(SHORT_SERIES_POLICIES)}, got {short_series!r}")
        if window_size is not None:
            check_window_spec(window_size, window_stride, short_series)
        if atlas is not None and not isinstance(atlas, str):
            raise LcmInputTypeError(f"expected `atlas` as a name (str) or None, got {type(atlas).__name__}")
        if roi_labels is not None:
            if isinstance(roi_labels, str) or len(roi_labels) != num_rois:
                raise LcmInputError(f"expected `roi_labels` to list {num_rois} labels (num_rois), got {roi_labels!r:.80}")
            roi_labels = [str(label) for label in roi_labels]
        if repetition_time is not None and not (isinstance(repetition_time, (int, float)) and repetition_time > 0):
            raise LcmInputError(f"expected `repetition_time` in seconds (> 0) or None, got {repetition_time!r}")
        self.vocabulary = vocabulary
        self.num_rois = num_rois
        self.kind = kind
        self.fisher_z = bool(fisher_z)
        self.atlas = atlas
        self.roi_labels = roi_labels
        self.repetition_time = None if repetition_time is None else float(repetition_time)
        self.window_size = window_size
        self.window_stride = window_stride
        self.short_series = short_series
        self._reference: dict[str, np.ndarray] | None = None
        self._model_config = None  # the model config whose temperatures post_process applies (never saved here)

    @property
    def vocabulary(self) -> BeiVocabulary | None:
        return self._vocabulary

    @vocabulary.setter
    def vocabulary(self, value) -> None:
        self._vocabulary = value if value is None or isinstance(value, BeiVocabulary) else BeiVocabulary(value)

    @property
    def is_fitted(self) -> bool:
        """True when the kind needs no group fit, or its reference is fitted."""
        return self.kind not in GROUP_KINDS or self._reference is not None

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_vocabulary", None)
        output.pop("_reference", None)
        output.pop("_model_config", None)
        output["beis"] = self._vocabulary.to_list() if self._vocabulary is not None else None
        output["group_reference_file"] = REFERENCE_NAME if self._reference is not None else None
        return output

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs):
        """Write ``preprocessor_config.json`` (the contract, BEIs included), ``bei_vocabulary.json`` and, for a
        fitted group kind, ``connectivity_reference.safetensors``."""
        from safetensors.numpy import save_file

        if not push_to_hub and not kwargs.pop("_staged", False):  # complete or absent (saving_lcm.staged_save)
            return staged_save(save_directory, lambda folder: self.save_pretrained(folder, _staged=True, **kwargs))
        files = list(super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs))
        if self._vocabulary is not None:
            files.append(self._vocabulary.save_pretrained(save_directory))
        if self._reference is not None:
            path = os.path.join(save_directory, REFERENCE_NAME)
            save_file({k: np.ascontiguousarray(v) for k, v in self._reference.items()}, path + ".tmp",
                      metadata={"kind": self.kind})
            os.replace(path + ".tmp", path)
            files.append(path)
        return files

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a directory (or Hub id) holding ``preprocessor_config.json``.

        The BEIs come from the model's ``config.json`` when the folder has one (the one source of truth);
        ``bei_vocabulary.json`` (which keeps the bins of binned BEIs) and the BEIs in
        ``preprocessor_config.json`` must agree with it, else ``ValueError`` says what differs. The calibration
        temperatures of that ``config.json`` (``temperatures``) are what :meth:`post_process` applies, until
        :meth:`check_model` binds a model's config instead.
        """
        vocabulary = kwargs.pop("vocabulary", None)
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        hub = {k: kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only", "subfolder") if k in kwargs}
        path = os.fspath(pretrained_model_name_or_path)
        processor.load_reference(path, **hub)
        config_file = _resolve(path, "config.json", hub)
        config = None
        if config_file is not None:
            with open(config_file, encoding="utf-8") as handle:
                config = json.load(handle)
            processor._model_config = config  # its temperatures calibrate post_process
        if vocabulary is not None:
            processor.vocabulary = vocabulary
            return processor
        vocab_file = _resolve(path, VOCABULARY_NAME, hub)
        sources = [(VOCABULARY_NAME, BeiVocabulary.from_pretrained(vocab_file) if vocab_file else None),
                   ("preprocessor_config.json", processor.vocabulary)]
        if config is not None and config.get("beis") is not None:
            truth = BeiVocabulary(config["beis"])
            for name, vocab in sources:
                difference = vocab is not None and bei_differences(truth.to_config(), vocab.to_config(), "config.json", name)
                if difference:
                    raise LcmInputError(f"{name} disagrees with the model's config.json: {difference} (the model config "
                                        f"is the one source of truth for the BEIs; re-save the processor)")
            sources.append(("config.json", truth))
            if config.get("num_rois") not in (None, processor.num_rois):
                raise LcmInputError(f"preprocessor_config.json expects num_rois={processor.num_rois}, the model's "
                                    f"config.json num_rois={config['num_rois']}")
        elif sources[0][1] is not None and sources[1][1] is not None:
            difference = bei_differences(sources[0][1].to_config(), sources[1][1].to_config(), *[s[0] for s in sources])
            if difference:
                raise LcmInputError(f"{VOCABULARY_NAME} disagrees with preprocessor_config.json: {difference}")
        processor.vocabulary = next((vocab for _, vocab in sources if vocab is not None), None)
        return processor

    def load_reference(self, pretrained_model_name_or_path, **hub) -> bool:
        """Load the fitted reference of a group kind (``connectivity_reference.safetensors``) from a folder or Hub
        repository, when the processor has none yet (``AutoFeatureExtractor`` / ``pipeline(...)`` build the
        processor from its JSON alone). Returns whether the processor is fitted now."""
        if self.kind in GROUP_KINDS and self._reference is None and pretrained_model_name_or_path:
            reference_file = _resolve(os.fspath(pretrained_model_name_or_path), REFERENCE_NAME, hub)
            if reference_file is not None:
                from safetensors.numpy import load_file

                self._reference = dict(load_file(reference_file))
        return self.is_fitted

    # ------------------------------------------------------------------ contract checks
    def check_model(self, config) -> None:
        """Refuse a model whose BEIs (names, order, kind, classes) or N differ from this processor's; bind an
        accepted model's config, whose calibration temperatures (``config.temperatures``, read when
        :meth:`post_process` runs) then calibrate :meth:`post_process`.

        Raises
        ------
        ValueError
            Saying which BEI differs and how, or the two N.
        """
        if self._vocabulary is not None:
            difference = bei_differences(config.beis, self._vocabulary.to_config(), "the model config",
                                         "the processor's vocabulary")
            if difference:
                raise LcmInputError(f"the processor's vocabulary does not match the model config: {difference}")
        if self.num_rois != config.num_rois:
            raise LcmInputError(f"expected a processor for the model's N={config.num_rois} ROIs, got num_rois={self.num_rois}")
        self._model_config = config

    def check_roi_labels(self, roi_labels: Sequence[str] | None, source: str = "the input") -> None:
        """Refuse ROI labels that differ from the contract (names or order); nothing to check when either is None.

        Raises
        ------
        ValueError
            Naming how many positions differ and the first ones.
        """
        if roi_labels is None or self.roi_labels is None:
            return
        labels = [str(label) for label in roi_labels]
        if labels == self.roi_labels:
            return
        if len(labels) != len(self.roi_labels):
            raise LcmInputError(f"{source}: expected {len(self.roi_labels)} ROI labels (atlas {self.atlas!r}), "
                                f"got {len(labels)}")
        differing = [i for i, (a, b) in enumerate(zip(self.roi_labels, labels)) if a != b]
        how = "the same labels in another order" if sorted(labels) == sorted(self.roi_labels) else "other labels"
        first = ", ".join(f"position {i}: expected {self.roi_labels[i]!r}, got {labels[i]!r}" for i in differing[:3])
        raise LcmInputError(f"{source}: ROI labels differ from the processor's contract (atlas {self.atlas!r}) at "
                            f"{len(differing)} positions ({how}); first: {first}")

    def check_repetition_time(self, repetition_time: float | None, source: str = "the input") -> None:
        """Warn when ``repetition_time`` differs from the training data's."""
        if repetition_time is None or self.repetition_time is None:
            return
        if not math.isclose(float(repetition_time), self.repetition_time, rel_tol=1e-3):
            warnings.warn(f"{source}: repetition time {float(repetition_time):g} s differs from the training data's "
                          f"{self.repetition_time:g} s: a window of {self.window_size} TRs spans another duration",
                          UserWarning, stacklevel=2)

    # ------------------------------------------------------------------ windows, fit, FC
    def window_spans(self, series, *, rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
        """``(start, valid TRs)`` of the windows of a series by the contract (the window rule,
        :func:`~lcm_hf.windows_lcm.window_spans`): ``[(0, T)]`` without ``window_size``.

        Parameters
        ----------
        series : array-like (T, N), or int T
            The series: its censored volumes (rows of NaN) are in no window (a window holding one is dropped).
            An int: the TRs of a series with none censored.
        rng : numpy.random.Generator, optional
            Random-offset crops (streaming): all windows shifted by one offset in ``[0, slack]``.
        """
        if isinstance(series, (int, np.integer)):
            n_time, censored = int(series), None
        else:
            n_time, censored = len(series), censored_rows(series)
        if self.window_size is None:
            return [(0, n_time)]
        return window_spans(n_time, self.window_size, self.window_stride, short_series=self.short_series, rng=rng,
                            censored=censored)

    def split_windows(self, series, subject_id=None, *, training: bool = False,
                      rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut one (T, N) series into the contract's windows: windows (W, S, N), valid TRs per window (W,).

        Full windows of ``window_size`` TRs (a shorter tail is dropped); a series shorter than one window
        follows ``short_series`` the same way in training and prediction: one window of all its TRs
        (``"pad"``, zero-padded to S), or none (``"drop"``). A window holding a censored volume (a row of NaN) is
        dropped (the window rule, :mod:`lcm_hf.windows_lcm`).

        Parameters
        ----------
        series : array-like (T, N)
        subject_id : str, optional
            Named in errors.
        training : bool
            True: a series the contract drops gives W = 0. False (prediction): it is refused.
        rng : numpy.random.Generator, optional
            Random-offset crops (:meth:`window_spans`).

        Raises
        ------
        ValueError
            At prediction, a series with no window: shorter than one window under ``short_series="drop"``
            (naming the subject, its TRs and the window), or under 3 TRs.
        """
        x = _as_series(series, 0, [subject_id])
        if self.window_size is None:
            return x[None], torch.tensor([x.shape[0]])
        windows, lengths = sliding_windows(x, self.window_size, self.window_stride, short_series=self.short_series,
                                           rng=rng)
        if windows.shape[0] == 0 and not training:
            censored = int(censored_rows(x).sum())
            if censored and len(self.window_spans(x.shape[0])):
                raise LcmInputError(
                    f"subject {subject_id!r}: expected at least one window of {self.window_size} consecutive valid TRs, "
                    f"got {x.shape[0]} TRs of which {censored} censored, one in every window (no window holds a "
                    "censored volume)")
            if self.short_series == "drop":
                raise LcmInputError(
                    f"subject {subject_id!r}: expected at least one window of {self.window_size} TRs, got "
                    f"{x.shape[0]} TRs: the processor's contract (short_series='drop') drops series shorter than "
                    f"a window, as training did; give a longer series (or a model trained with short_series='pad')")
            raise LcmInputError(f"expected at least 3 time points for subject {subject_id!r}, got {x.shape[0]}")
        return windows, lengths

    def fit(self, timeseries, lengths=None, *, cut_windows: bool = True) -> LcmProcessor:
        """Fit the group reference of a group kind (``tangent``) once, on training series (like nilearn's
        ``ConnectivityMeasure.fit``); other kinds need no fit and are returned unchanged.

        Parameters
        ----------
        timeseries : sequence of (T_i, N) array-likes, or (B, T, N)
        lengths : array-like of int (B,), optional
            Valid TRs of a zero-padded (B, T, N) input.
        cut_windows : bool
            Cut each series into the contract's windows first (default); False when the rows are windows.

        Returns
        -------
        LcmProcessor
            ``self``, with the geometric mean of the windows' Ledoit-Wolf covariances and its whitening.
        """
        if self.kind not in GROUP_KINDS:
            return self
        pieces = [valid_volumes(piece) for _, piece in self._pieces(timeseries, lengths, None, cut_windows,
                                                                     training=True)]
        self._reference = fit_tangent_reference(pieces)
        return self

    def _pieces(self, timeseries, lengths, subject_ids, cut_windows: bool = True, training: bool = False):
        """(subject index, (T_w, N) valid-TR window) pairs of every series."""
        if isinstance(timeseries, (np.ndarray, torch.Tensor)) and timeseries.ndim == 2:
            timeseries = [timeseries]
        series = [_as_series(item, i, subject_ids) for i, item in enumerate(timeseries)]
        if lengths is not None:
            series = [item[: int(n)] for item, n in zip(series, lengths)]
        for i, item in enumerate(series):
            name = subject_ids[i] if subject_ids is not None else i
            if item.shape[1] != self.num_rois:
                raise LcmInputError(f"expected time series with {self.num_rois} ROI columns (num_rois), got "
                                    f"{item.shape[1]} for subject {name!r}")
            windows, sizes = (self.split_windows(item, name, training=training) if cut_windows
                              else (item[None], [item.shape[0]]))
            for window, size in zip(windows, sizes):
                yield i, window[: int(size)]

    def connectivity(self, pieces: Sequence[torch.Tensor], subject_ids=None) -> torch.Tensor:
        """FC (W, N, N) float32 of windows (each (T_w, N), valid TRs only) by the contract's kind and Fisher z.

        Censored volumes (rows of NaN, :func:`~lcm_hf.windows_lcm.censored_rows`) are left out: the FC of a whole
        series uses its valid volumes (a window of the contract holds none).
        """
        pieces = [valid_volumes(piece) for piece in pieces]
        if self.kind not in GROUP_KINDS:
            return compute_connectivity(list(pieces), kind=self.kind, fisher_z=self.fisher_z, subject_ids=subject_ids)
        if self._reference is None:
            raise LcmInputError(f"expected a fitted processor for the group kind {self.kind!r}: call "
                                f"processor.fit(training_timeseries) once (the reference must not depend on the batch)")
        fc = tangent_connectivity(pieces, self._reference)
        return fisher_z(fc) if self.fisher_z else fc

    # ------------------------------------------------------------------ forward
    def __call__(self, timeseries=None, connectivity=None, phenotypes=None, *, lengths=None,
                 subject_ids: Sequence[str] | None = None, roi_labels: Sequence[str] | None = None,
                 repetition_time: float | None = None, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """Build a model-ready batch by the contract.

        Parameters
        ----------
        timeseries : array-like (B, T, N), or sequence of B array-likes (T_i, N), optional
            ROI time series. With ``window_size`` each series is cut into the training windows (one row per
            window) and ``subject_index`` says which series a row comes from.
        connectivity : array-like (B, N, N) or (N, N), optional
            Ready connectivity matrices (used as given). Exactly one of the two.
        phenotypes : dict or sequence of B dicts, optional
            BEI values per series; adds ``labels`` (rows, K) with NaN for missing values.
        lengths : array-like of int (B,), optional
            Valid time points of a zero-padded (B, T, N) ``timeseries``.
        subject_ids : sequence of str, optional
            Names for warnings and errors.
        roi_labels : sequence of str, optional
            The inputs' ROI labels (columns); must equal the contract's (``ValueError`` otherwise).
        repetition_time : float, optional
            The inputs' TR in seconds; another TR than the contract's is a warning.
        return_tensors : {"pt", "np", None}

        Returns
        -------
        BatchFeature
            ``connectivity`` float32 (rows, N, N); with windows ``subject_index`` int64 (rows,); with phenotypes
            ``labels`` float32 (rows, K).
        """
        if kwargs:
            raise LcmInputTypeError(f"unexpected arguments {sorted(kwargs)}; expected timeseries, connectivity, phenotypes")
        if (timeseries is None) == (connectivity is None):
            raise LcmInputError("expected exactly one of `timeseries` or `connectivity`, got "
                                + ("both" if timeseries is not None else "neither"))
        self.check_roi_labels(roi_labels)
        self.check_repetition_time(repetition_time)
        subject_index = None
        if timeseries is not None:
            pairs = list(self._pieces(timeseries, lengths, subject_ids))
            index = torch.tensor([i for i, _ in pairs], dtype=torch.int64)
            piece_ids = [subject_ids[i] for i in index.tolist()] if subject_ids is not None else None
            fc = self.connectivity([piece for _, piece in pairs], subject_ids=piece_ids)
            subject_index = index if self.window_size is not None else None
        else:
            fc = torch.as_tensor(np.asarray(connectivity) if not isinstance(connectivity, torch.Tensor) else connectivity)
            fc = fc[None] if fc.ndim == 2 else fc
            if fc.ndim == 3:  # ready matrices: values checked once here (complex, NaN/inf, absurd, blank)
                check_connectivity_values(fc, subject_ids=subject_ids)
        fc = fc.to(torch.float32)
        if fc.ndim != 3 or fc.shape[1:] != (self.num_rois, self.num_rois):
            raise LcmInputError(f"expected connectivity of shape (B, {self.num_rois}, {self.num_rois}), got {tuple(fc.shape)}")
        data: dict[str, Any] = {"connectivity": fc, **({} if subject_index is None else {"subject_index": subject_index})}
        if phenotypes is not None:
            if self._vocabulary is None:
                raise LcmInputError("expected a processor with a `vocabulary` to encode phenotypes, got none")
            if isinstance(phenotypes, Mapping):
                phenotypes = [phenotypes]
            labels = self._vocabulary.encode(phenotypes)
            rows = fc.shape[0] if subject_index is None else int(subject_index.max()) + 1
            if labels.shape[0] != rows:
                raise LcmInputError(f"expected {rows} phenotype rows (one per sample), got {labels.shape[0]}")
            data["labels"] = labels if subject_index is None else labels[subject_index]
        if return_tensors in ("np", None):
            data = {k: v.numpy() for k, v in data.items()}
        elif return_tensors != "pt":
            raise LcmInputError(f"expected return_tensors 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature(data=data, tensor_type=return_tensors)

    def post_process(
        self, outputs, subject_index=None, *, return_windows: bool = False, calibrated: bool = True,
        temperatures: dict | None = None, config=None,
    ) -> list[dict]:
        """Model outputs -> one prediction per subject: ``{bei: {"label", "score", "scores"} | {"value"}}``.

        Rows of one subject (its windows) are averaged: the mean class probabilities (the label is their
        argmax, the score its mean probability) and the mean value of continuous BEIs. Probabilities are
        calibrated by default with the model's stored temperatures (``config.temperatures``: softmax(logits / T)
        per window, before the average), so this, the pipeline and `lcm-hf predict` give the same numbers.

        Parameters
        ----------
        outputs : model output with ``logits`` (W, P), a dict with ``"logits"``, or a tensor (W, P)
        subject_index : array-like of int (W,), optional
            The subject of every row (``subject_index`` of :meth:`__call__`); default: every row its own subject.
        return_windows : bool
            Add each BEI's per-window predictions under ``"windows"``.
        calibrated : bool
            Apply the model's temperatures (default); False gives the plain softmax (T = 1 for every BEI).
        temperatures : dict, optional
            Explicit ``{bei: T}`` instead of the model's (BEIs without one use T = 1).
        config : LcmConfig, optional
            The model config whose ``temperatures`` to apply. Default: the config :meth:`check_model` bound (the
            pipeline binds its model's), else the ``config.json`` :meth:`from_pretrained` read next to the
            processor, else none (T = 1: a processor built in code for a model that was never calibrated).

        Returns
        -------
        list of dict, one per subject (in subject-index order)
        """
        if self._vocabulary is None:
            raise LcmInputError("expected a processor with a `vocabulary` to name predictions, got none")
        if temperatures is not None and not calibrated:
            raise LcmInputError("expected either `temperatures` or calibrated=False, got both")
        logits = outputs
        if not isinstance(outputs, torch.Tensor):
            logits = outputs["logits"] if isinstance(outputs, Mapping) else getattr(outputs, "logits", None)
        if not isinstance(logits, torch.Tensor):
            raise LcmInputTypeError(f"expected model outputs with a `logits` tensor, got {type(outputs).__name__}")
        if temperatures is None and calibrated:
            temperatures = self.model_temperatures(config)
        return logits_to_bei_predictions(
            logits, self._vocabulary.to_config(), temperatures, subject_index, return_windows=return_windows
        )

    def model_temperatures(self, config=None) -> dict[str, float] | None:
        """The calibration temperatures :meth:`post_process` applies: ``config.temperatures`` of ``config``, else
        of the model config bound by :meth:`check_model` or read by :meth:`from_pretrained`; None without one."""
        config = self._model_config if config is None else config
        if config is None:
            return None
        return config.get("temperatures") if isinstance(config, Mapping) else getattr(config, "temperatures", None)


def _resolve(path: str, filename: str, hub: Mapping) -> str | None:
    """The local path of ``filename`` in a folder or Hub repository, or None when it has none."""
    if os.path.isdir(path):
        file = os.path.join(path, hub.get("subfolder") or "", filename)
        return file if os.path.isfile(file) else None
    from transformers.utils import cached_file

    try:
        return cached_file(path, filename, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False, **hub)
    except OSError:
        return None


__all__ = ["LcmProcessor", "SHORT_SERIES_POLICIES", "bei_differences"]
