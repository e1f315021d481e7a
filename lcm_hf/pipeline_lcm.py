"""`PhenotypePredictionPipeline`: the transformers pipeline of the custom task ``"phenotype-prediction"``.

One subject per input: a time-series file path (.npy, .mat, or a text table .1D/.txt/.tsv/.csv with one row per TR,
read by the core's one reader `timeseries_files_lcm.read_timeseries`, which refuses NaN/inf and connectivity matrices),
a (T, N) array, a dict ``{"timeseries": (T, N), "roi_labels": [...], "repetition_time": 2.0, "subject_id": ...}``
or ``{"connectivity": (N, N)}``; a list of them gives a list of outputs. The processor (the model's
preprocessing contract) cuts the series into the training windows, the model predicts every window, and the
windows are averaged into one prediction per subject: ``{bei: {"label", "score", "scores"} | {"value"}}``.

```python
from transformers import pipeline
predict = pipeline("phenotype-prediction", model="path/to/exported", trust_remote_code=True)
predict("sub-01_task-rest_bold.tsv")      # {"sex": {"label": "F", "score": 0.81, "scores": {...}}, "age": {...}}
```

With lcm_hf imported the task is registered (`transformers.pipeline("phenotype-prediction", model=folder)`),
and `lcm-hf predict` runs this class. An exported folder carries it as remote code (``custom_pipelines`` in
``config.json``). Imports only numpy, torch, transformers and sibling modules.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from transformers import Pipeline

from .errors_lcm import LcmInputError, LcmInputTypeError
from .processing_lcm import LcmProcessor, _resolve
from .timeseries_files_lcm import read_timeseries

TASK = "phenotype-prediction"
INPUT_KEYS = ("timeseries", "connectivity", "roi_labels", "repetition_time", "subject_id")
PROCESSOR_FILE = "preprocessor_config.json"
NO_PROCESSOR_WARNING = (
    "no processor (preprocessor_config.json) with this model: predicting from one Pearson FC of each whole series "
    "with the BEIs of config.json. Unchecked: the training windows (none are cut), the ROI labels and their order, "
    "the repetition time, the FC kind and Fisher z. Save the training processor next to the model: "
    "processor.save_pretrained(folder)")


def read_input(path: str | os.PathLike, censored_volumes: str = "refuse", header: str = "auto") -> dict:
    """One subject's pipeline input from a time-series file, read by the core's one reader
    (:func:`lcm_hf.timeseries_files_lcm.read_timeseries`: .npy, .mat, text tables; finite values; a connectivity
    matrix refused; censored volumes refused unless ``censored_volumes="drop"``: then NaN rows no window holds).
    ``header`` ("auto", "yes", "no"): whether a text table's first line that does not start with ``#`` is a header
    row (as ``build_dataset.py --header`` read the training files).

    Returns
    -------
    dict
        ``timeseries`` (T, N) float32, ``roi_labels`` (list of N str or None), ``repetition_time`` (float or None,
        from a BIDS sidecar ``<name>.json``) and ``subject_id`` (the path).
    """
    timeseries, roi_labels, repetition_time = read_timeseries(path, censored_volumes=censored_volumes, header=header)
    return {"timeseries": timeseries, "roi_labels": roi_labels, "repetition_time": repetition_time,
            "subject_id": os.fspath(path)}


def _is_number_row(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)


class PhenotypePredictionPipeline(Pipeline):
    """Per-subject BEI predictions from ROI time series (or FC), by the model's preprocessing contract.

    Parameters
    ----------
    model : LcmForBeiPrediction
    feature_extractor : LcmProcessor, optional
        The model's processor (default: the one saved in the model's folder, loaded by ``transformers.pipeline``
        or here; one that fails to load raises its error). Without one (a folder without
        ``preprocessor_config.json``), a ``UserWarning`` says what goes unchecked and the pipeline predicts
        from FC of the whole series with the model config's BEIs. A processor whose BEIs differ from the model
        config is refused (``ValueError``). Probabilities are calibrated with ``config.temperatures``.
    return_windows : bool
        (call argument) Add each BEI's per-window predictions under ``"windows"``.
    window_batch_size : int
        (call argument) Windows per forward pass (default 64).
    censored_volumes, header : str
        (call arguments) How a time-series file is read (:func:`read_input`): ``censored_volumes="drop"`` keeps a
        file with censored volumes; ``header="yes"`` / ``"no"`` settles a first row of whole-number codes.
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_tokenizer = False
    _load_feature_extractor = None  # load the folder's processor when it has one; without one, warn (__init__)

    def __init__(self, model, feature_extractor=None, **kwargs):
        super().__init__(model=model, feature_extractor=feature_extractor, **kwargs)
        config = self.model.config
        if self.feature_extractor is None:
            source = getattr(config, "_name_or_path", None)
            if source and _resolve(os.fspath(source), PROCESSOR_FILE, {}) is not None:
                # transformers.pipeline drops a processor that fails to load: load it again to raise its error
                self.feature_extractor = LcmProcessor.from_pretrained(source)
            else:
                warnings.warn(NO_PROCESSOR_WARNING, UserWarning, stacklevel=2)
                self.feature_extractor = LcmProcessor(vocabulary=config.beis, num_rois=config.num_rois)
        elif self.feature_extractor.vocabulary is None:
            self.feature_extractor.vocabulary = config.beis
        self.feature_extractor.load_reference(getattr(config, "name_or_path", None))  # a group kind's fitted FC
        self.feature_extractor.check_model(config)
        self.model.eval()

    def __call__(self, inputs, **kwargs):
        """Predict one subject (a path, a (T, N) array, a dict) or a list of them (a list of outputs)."""
        if isinstance(inputs, (list, tuple)) and not (inputs and _is_number_row(inputs[0])):
            return [self(item, **kwargs) for item in inputs]
        if isinstance(inputs, (list, tuple)):  # one (T, N) series as nested lists
            inputs = np.asarray(inputs, dtype=np.float32)
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, return_windows=None, window_batch_size=None, censored_volumes=None, header=None,
                             **kwargs):
        if kwargs:
            raise LcmInputTypeError(f"unexpected arguments {sorted(kwargs)}; expected return_windows, window_batch_size, "
                                    "censored_volumes, header")
        forward = {} if window_batch_size is None else {"window_batch_size": int(window_batch_size)}
        post = {} if return_windows is None else {"return_windows": bool(return_windows)}
        pre = {name: value for name, value in (("censored_volumes", censored_volumes), ("header", header))
               if value is not None}
        return pre, forward, post

    def preprocess(self, inputs, censored_volumes: str = "refuse", header: str = "auto") -> dict:
        processor = self.feature_extractor
        item = dict(inputs) if isinstance(inputs, Mapping) else {"timeseries": inputs}
        unknown = sorted(set(item) - set(INPUT_KEYS))
        if unknown:
            raise LcmInputError(f"expected input keys among {list(INPUT_KEYS)}, got {unknown}")
        source = item.get("subject_id")
        if isinstance(item.get("timeseries"), (str, os.PathLike)):
            read = read_input(item["timeseries"], censored_volumes, header)
            source = source or read["subject_id"]
            item = {**read, **{key: value for key, value in item.items() if key != "timeseries" and value is not None}}
        source = str(source) if source is not None else "the input"
        processor.check_roi_labels(item.get("roi_labels"), source)
        processor.check_repetition_time(item.get("repetition_time"), source)
        if item.get("connectivity") is not None:
            fc = np.asarray(item["connectivity"], dtype=np.float32)
            if fc.ndim != 2:
                raise LcmInputError(f"{source}: expected one subject's connectivity (N, N), got shape {fc.shape}")
            batch = processor(connectivity=fc[None], return_tensors="pt")
        elif item.get("timeseries") is not None:
            series = item["timeseries"]
            series = series if isinstance(series, torch.Tensor) else np.asarray(series, dtype=np.float32)
            if series.ndim != 2:
                raise LcmInputError(f"{source}: expected one subject's time series (T, N), got shape "
                                    f"{tuple(series.shape)}; pass a list for several subjects")
            batch = processor(timeseries=[series], subject_ids=[source], return_tensors="pt")
        else:
            raise LcmInputError(f"{source}: expected a 'timeseries' or a 'connectivity' input, got neither")
        windows = batch["connectivity"].shape[0]
        return {"connectivity": batch["connectivity"],
                "subject_index": batch.get("subject_index", torch.zeros(windows, dtype=torch.int64))}

    def _forward(self, model_inputs, window_batch_size: int = 64) -> dict:
        chunks = model_inputs["connectivity"].split(window_batch_size)
        logits = torch.cat([self.model(connectivity=chunk).logits for chunk in chunks])
        return {"logits": logits, "subject_index": model_inputs["subject_index"]}

    def postprocess(self, model_outputs, return_windows: bool = False) -> dict:
        predictions = self.feature_extractor.post_process(
            model_outputs["logits"], subject_index=model_outputs["subject_index"], return_windows=return_windows,
            config=self.model.config)  # calibrated by the model's temperatures
        return predictions[0]


def load_phenotype_pipeline(model: str | os.PathLike, device=None, **kwargs) -> PhenotypePredictionPipeline:
    """The pipeline of a model folder (or Hub id) with lcm_hf's classes, no remote code (what `lcm-hf predict`
    runs). The processor is the folder's ``preprocessor_config.json`` (its BEIs checked against ``config.json``),
    or, when the folder has none, FC of whole series with the config's BEIs and a warning naming what goes
    unchecked (:data:`NO_PROCESSOR_WARNING`)."""
    from .modeling_lcm import LcmForBeiPrediction

    lcm = LcmForBeiPrediction.from_pretrained(model)  # the pipeline loads the processor saved next to it
    return PhenotypePredictionPipeline(model=lcm, device=device, task=TASK, **kwargs)


__all__ = ["NO_PROCESSOR_WARNING", "PhenotypePredictionPipeline", "TASK", "load_phenotype_pipeline", "read_input", "read_timeseries"]
