"""Export a trained LCM as a self-contained Hugging Face model repository (and push it).

The folder `export_model_repository` writes loads without `lcm_hf` installed::

    from transformers import AutoModelForPreTraining, AutoFeatureExtractor
    model = AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True)
    processor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)

It holds ``config.json`` (with ``auto_map``, and ``custom_pipelines`` when a processor is given, so
``transformers.pipeline("phenotype-prediction", model=folder, trust_remote_code=True)`` works), ``model.safetensors``,
the remote-code files (``configuration_lcm.py``, ``modeling_lcm.py``, ``processing_lcm.py``, ``pipeline_lcm.py``
and the modules they import relatively), ``preprocessor_config.json`` (the preprocessing contract) + the BEI
vocabulary, and a model card ``README.md``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers.dynamic_module_utils import custom_object_save

from .configuration_lcm import LcmConfig
from .errors_lcm import LcmInputError, LcmInputTypeError
from .modeling_lcm import LcmForBeiPrediction, LcmModel
from .pipeline_lcm import TASK, PhenotypePredictionPipeline

ARXIV_ID = "2510.18910"
CITATION = """@article{wei2025lcm,
  title   = {Large Connectome Model: An fMRI Foundation Model of Brain Connectomes Empowered by
             Brain-Environment Interaction in Multitask Learning Landscape},
  author  = {Wei, Ziquan and Dan, Tingting and Wu, Guorong},
  journal = {arXiv preprint arXiv:2510.18910},
  year    = {2025}
}"""
DEFAULT_TAGS = ["lcm", "fmri", "functional-connectivity", "connectome", "neuroscience", "brain", "custom_code"]
AUTO_MAP = {
    "AutoConfig": "configuration_lcm.LcmConfig",
    "AutoModel": "modeling_lcm.LcmModel",
    "AutoModelForPreTraining": "modeling_lcm.LcmForBeiPrediction",
}
CUSTOM_PIPELINES = {TASK: {"impl": "pipeline_lcm.PhenotypePredictionPipeline", "pt": ["AutoModelForPreTraining"]}}


@contextlib.contextmanager
def _registered_for_auto_classes(processor=None) -> Iterator[None]:
    """`register_for_auto_class` the LCM classes for the duration of an export, then restore the class
    attributes, so that ordinary `save_pretrained` calls elsewhere keep writing no code files."""
    targets = [(LcmConfig, "AutoConfig"), (LcmModel, "AutoModel"), (LcmForBeiPrediction, "AutoModelForPreTraining")]
    if processor is not None:
        targets.append((type(processor), "AutoFeatureExtractor"))
    saved = [(cls, "_auto_class" in cls.__dict__, cls.__dict__.get("_auto_class")) for cls, _ in targets]
    try:
        for cls, auto_class in targets:
            cls.register_for_auto_class(auto_class)
        yield
    finally:
        for cls, had, value in saved:
            if had:
                cls._auto_class = value
            else:
                with contextlib.suppress(AttributeError):
                    delattr(cls, "_auto_class")


def _model_card_options() -> frozenset[str]:
    parameters = inspect.signature(render_model_card).parameters
    return frozenset(name for name in parameters if name != "config")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def evaluation_table(results: Mapping[str, Mapping[str, Any]] | None) -> str:
    """A markdown table from ``{row name (e.g. BEI or dataset/BEI): {metric: value}}``."""
    if not results:
        return "_No evaluation results were given for this export._"
    metrics: list[str] = []
    for row in results.values():
        metrics.extend(m for m in row if m not in metrics)
    lines = ["| | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(_format_value(row.get(m, "")) for m in metrics) + " |")
    return "\n".join(lines)


def eval_results_from_metrics(
    metrics: Mapping[str, float], beis: Sequence[Mapping] | None = None, level: str = "", prefix: str = "eval_"
) -> dict[str, dict[str, float]]:
    """Rows for the evaluation table from `LcmTrainer` metrics (``eval_{bei}/{metric}``, see
    `lcm_hf.training.metrics`): ``{bei: {metric: value}}``; `level="subject/"` takes the subject-level metrics.
    Per-layer and per-dataset keys are left out."""
    names = [b["name"] for b in beis] if beis is not None else None
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if not key.startswith(prefix) or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        bei, _, rest = key[len(prefix) :].partition("/")
        if not rest.startswith(level) or "/" in rest[len(level) :] or bei == "dataset":
            continue
        if names is not None and bei not in names and bei != "mean":
            continue
        rows.setdefault(bei, {})[rest[len(level) :]] = float(value)
    if "mean" in rows:
        rows["mean"] = rows.pop("mean")
    return rows


def load_eval_results(
    path: str | os.PathLike, beis: Sequence[Mapping] | None = None, subject_level: bool = False
) -> dict[str, dict[str, float]]:
    """Rows for the evaluation table from a JSON file.

    Parameters
    ----------
    path : str or PathLike
        JSON: rows already (``{name: {metric: value}}``), `LcmTrainer` metrics (``eval_{bei}/{metric}``,
        ``test_{bei}/{metric}`` or no prefix), or a training run's ``results.json`` (its ``test_metrics``).
    beis : sequence of dict, optional
        The model's ``config.beis``: metrics of other names are left out.
    subject_level : bool
        Take the subject-level metrics (``{bei}/subject/{metric}``).

    Returns
    -------
    dict
        ``{bei: {metric: value}}`` (see :func:`eval_results_from_metrics`).
    """
    metrics = json.loads(Path(path).read_text())
    if isinstance(metrics.get("test_metrics"), dict):  # a training run's results.json
        metrics = metrics["test_metrics"]
    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        return metrics
    prefix = next((p for p in ("eval_", "test_") if any(k.startswith(p) for k in metrics)), "")
    return eval_results_from_metrics(metrics, beis, level="subject/" if subject_level else "", prefix=prefix)


def text_or_file(value: str | None) -> str | None:
    """`value`, or the contents of the file it names when it is an existing ``.md`` / ``.txt`` path."""
    if value and value.endswith((".md", ".txt")) and Path(value).is_file():
        return Path(value).read_text()
    return value


def _model_index(
    model_name: str, results: Mapping[str, Mapping[str, Any]] | None, dataset: str | None, dataset_type: str | None
) -> list:
    """`model-index` metadata (the Hub's evaluation widget) from the evaluation results."""
    if not results:
        return []
    entries = []
    for row_name, row in results.items():
        metrics = [
            {"type": str(metric), "value": float(value), "name": f"{row_name} {metric}"}
            for metric, value in row.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        if not metrics:
            continue
        entries.append(
            {
                "task": {"type": "tabular-classification", "name": f"BEI prediction: {row_name}"},
                "dataset": {"name": dataset or "evaluation set", "type": dataset_type or "custom"},
                "metrics": metrics,
            }
        )
    return [{"name": model_name, "results": entries}] if entries else []


def render_model_card(
    config: LcmConfig,
    model_name: str = "lcm-model",
    num_parameters: int | None = None,
    license: str = "apache-2.0",
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    metrics: Sequence[str] = (),
    eval_results: Mapping[str, Mapping[str, Any]] | None = None,
    eval_dataset: str | None = None,
    training_data: str | None = None,
    training_procedure: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    repo_id: str | None = None,
) -> str:
    """The model card text (YAML front matter + markdown) of an exported LCM."""
    metric_names = list(metrics)
    for row in (eval_results or {}).values():
        metric_names.extend(m for m in row if m not in metric_names)
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        "license": license,
        "tags": list(dict.fromkeys([*DEFAULT_TAGS, *tags])),
        "pipeline_tag": "tabular-classification",
    }
    if datasets:
        metadata["datasets"] = list(datasets)
    if metric_names:
        metadata["metrics"] = metric_names
    dataset_type = datasets[0] if datasets else None
    model_index = _model_index(model_name, eval_results, eval_dataset or dataset_type, dataset_type)
    if model_index:
        metadata["model-index"] = model_index
    front_matter = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).strip()

    bei_rows = ["| BEI | kind | classes / unit | loss weight |", "|---|---|---|---|"]
    for bei in config.beis:
        classes = ", ".join(bei["classes"]) if bei["kind"] == "categorical" else "value (regression)"
        bei_rows.append(f"| {bei['name']} | {bei['kind']} | {classes} | {bei['loss_weight']:g} |")
    params = f"{num_parameters / 1e6:.2f}M" if num_parameters else "n/a"
    readout = config.readout_policy + (
        f" (selected layers: {json.dumps(config.readout_layers)})" if config.readout_layers else ""
    )
    load_id = repo_id or "path/to/this/folder"
    default_intended = (
        "Research on functional brain connectivity: predicting brain-environment interactions (BEIs: "
        "phenotypes such as sex, age, cognitive state or diagnosis group) from an ROI-by-ROI functional "
        "connectivity matrix, inspecting cross-attention maps over ROIs, and as a starting point for "
        "finetuning on new connectome datasets."
    )
    default_limitations = (
        "- **Research use only. This model is not a medical or diagnostic device** and must not be used "
        "to diagnose, screen or treat any person or to make clinical decisions.\n"
        "- Predictions reflect the training cohorts (scanners, sites, preprocessing, atlas, age range, "
        "population); they may not transfer to other acquisitions or populations and can encode their biases.\n"
        "- The input must use the same atlas and ROI order (N = "
        f"{config.num_rois}) and the same connectivity measure as in training.\n"
        "- Group-level accuracy does not imply reliable individual predictions; attention maps are "
        "descriptive and are not evidence of causal brain mechanisms."
    )
    sections = [
        f"---\n{front_matter}\n---",
        f"# {model_name}",
        "A Large Connectome Model (LCM; Wei, Dan & Wu, "
        f"[arXiv:{ARXIV_ID}](https://arxiv.org/abs/{ARXIV_ID})) exported with `lcm-hf`: a DETR-style "
        "decoder in which one learnable token per BEI class self-attends and cross-attends to the rows "
        "of a functional-connectivity matrix, with a scalar readout at every layer.",
        "## Model details\n\n"
        f"| | |\n|---|---|\n| ROIs (N) | {config.num_rois} |\n| width (E) | {config.hidden_size} |\n"
        f"| layers | {config.num_hidden_layers} |\n| heads | {config.num_attention_heads} |\n"
        f"| FFN width | {config.intermediate_size} |\n| BEI tokens (P) | {config.num_bei_tokens} |\n"
        f"| parameters | {params} |\n| norm | {config.norm_position}-norm, FC encoder {config.fc_norm} |\n"
        f"| readout policy | {readout} |",
        "### Brain-environment interactions (outputs)\n\n" + "\n".join(bei_rows),
        "## Intended use\n\n" + (intended_use or default_intended),
        "## How to use\n\nOne prediction per subject, with the preprocessing of training (atlas and ROI order, "
        "windows, connectivity kind: see `preprocessor_config.json`):\n\n```python\n"
        "from transformers import pipeline\n\n"
        f'predict = pipeline("{TASK}", model="{load_id}", trust_remote_code=True)\n'
        'predict("sub-01_task-rest_timeseries.tsv")  # a (T, N) table of ROI time series, or a (T, N) array\n'
        "```\n\nOr step by step:\n\n```python\nimport numpy as np\n"
        "from transformers import AutoFeatureExtractor, AutoModelForPreTraining\n\n"
        f'model = AutoModelForPreTraining.from_pretrained("{load_id}", trust_remote_code=True).eval()\n'
        f'processor = AutoFeatureExtractor.from_pretrained("{load_id}", trust_remote_code=True)\n'
        "processor.check_model(model.config)  # the BEIs agree; post_process applies config.temperatures\n"
        f"timeseries = np.random.randn(200, {config.num_rois})  # (T, N) ROI time series, same atlas as training\n"
        "batch = processor(timeseries=[timeseries], return_tensors=\"pt\")  # one row per window\n"
        "out = model(connectivity=batch[\"connectivity\"])\n"
        "print(processor.post_process(out, subject_index=batch.get(\"subject_index\")))\n```\n\n"
        "With `lcm-hf` installed, `LcmForBeiPrediction.from_pretrained` and `LcmProcessor.from_pretrained` "
        "load the same folder without remote code.",
        "## Training data\n\n" + (training_data or "_Not documented for this export._"),
    ]
    if training_procedure:
        sections.append("## Training procedure\n\n" + training_procedure)
    sections += [
        "## Evaluation\n\n"
        + (f"On {eval_dataset}:\n\n" if eval_dataset else "")
        + evaluation_table(eval_results),
        "## Limitations and ethical considerations\n\n" + (limitations or default_limitations),
        "## Citation\n\n```bibtex\n" + CITATION + "\n```",
    ]
    return "\n\n".join(sections) + "\n"


MODEL_CARD_OPTIONS = _model_card_options()  # the keys `model_card_info` may hold


def export_model_repository(
    model: LcmForBeiPrediction,
    output_dir: str | os.PathLike,
    processor=None,
    model_card_info: Mapping[str, Any] | None = None,
    safe_serialization: bool = True,
) -> list[str]:
    """Write a complete Hub model repository for `model` into `output_dir`.

    Args:
        model: the trained `LcmForBeiPrediction`.
        output_dir: the folder to write (created; existing files are overwritten).
        processor: an `LcmProcessor` (saved with its vocabulary and registered for
            `AutoFeatureExtractor`); without one, only the model loads through the Auto classes.
        model_card_info: keyword arguments of `render_model_card`: ``model_name``, ``license``,
            ``datasets``, ``tags``, ``metrics``, ``eval_results`` ({row: {metric: value}}),
            ``eval_dataset``, ``training_data``, ``training_procedure``, ``intended_use``,
            ``limitations``, ``repo_id``.

    Returns:
        The sorted file names written into `output_dir`.
    """
    if not isinstance(model, LcmForBeiPrediction):
        raise LcmInputTypeError(f"expected an LcmForBeiPrediction, got {type(model).__name__}")
    if processor is not None:
        processor.check_model(model.config)  # the model config is the one source of truth for the BEIs
        if not getattr(processor, "is_fitted", True):
            raise LcmInputError(f"expected a fitted processor for the group kind {processor.kind!r}: call "
                                "processor.fit(training_timeseries) before exporting")
    info = dict(model_card_info or {})
    unknown = set(info) - MODEL_CARD_OPTIONS
    if unknown:
        raise LcmInputError(f"unknown `model_card_info` keys: {sorted(unknown)}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    old_auto_map = copy.deepcopy(getattr(model.config, "auto_map", None))
    try:
        model.config.auto_map = dict(AUTO_MAP)
        with _registered_for_auto_classes(processor):
            model.save_pretrained(output_dir, safe_serialization=safe_serialization)
            if processor is not None:
                processor.save_pretrained(output_dir)
    finally:
        model.config.auto_map = old_auto_map
        if old_auto_map is None:
            with contextlib.suppress(AttributeError):
                del model.config.auto_map

    # `save_pretrained` merges auto_map entries as it goes; make sure all three model entries are there.
    config_path = output_dir / "config.json"
    config_json = json.loads(config_path.read_text())
    config_json["auto_map"] = {**config_json.get("auto_map", {}), **AUTO_MAP}
    if processor is not None:  # transformers.pipeline("phenotype-prediction", model=folder, trust_remote_code=True)
        custom_object_save(PhenotypePredictionPipeline, output_dir)
        config_json["custom_pipelines"] = CUSTOM_PIPELINES
    config_path.write_text(json.dumps(config_json, indent=2, sort_keys=True) + "\n")

    info.setdefault("num_parameters", sum(p.numel() for p in model.parameters()))
    (output_dir / "README.md").write_text(render_model_card(model.config, **info))
    return sorted(p.name for p in output_dir.iterdir() if p.is_file())


def push_model_repository(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload LCM model",
) -> str:
    """Upload an exported folder to the Hub with `huggingface_hub` (needs a token with write access:
    `token`, or ``HF_TOKEN`` / a cached login). Returns the repository URL."""
    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise RuntimeError("pushing needs a Hugging Face token: pass --token, set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=os.fspath(folder), repo_id=repo_id, commit_message=commit_message)
    return str(url)


__all__ = [
    "AUTO_MAP",
    "CITATION",
    "eval_results_from_metrics",
    "evaluation_table",
    "load_eval_results",
    "export_model_repository",
    "push_model_repository",
    "render_model_card",
    "text_or_file",
]
