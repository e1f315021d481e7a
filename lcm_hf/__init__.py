"""lcm-hf: the Large Connectome Model (LCM) as a HuggingFace-native package.

```python
from lcm_hf import LcmConfig, LcmForBeiPrediction, LcmProcessor, BeiVocabulary
```
"""

import importlib

from .auto_registration import RegisterOnImport
from .errors_lcm import LcmInputError, LcmInputTypeError

__version__ = "0.1.0"

# Names load on first use (PEP 562), so `lcm-hf --help` needs no torch.
_LAZY = {
    "PRESETS": "configuration_lcm",
    "LcmConfig": "configuration_lcm",
    "LcmForBeiPrediction": "modeling_lcm",
    "LcmForBeiPredictionOutput": "modeling_lcm",
    "LcmModel": "modeling_lcm",
    "LcmModelOutput": "modeling_lcm",
    "LcmPreTrainedModel": "modeling_lcm",
    "logits_to_bei_predictions": "modeling_lcm",
    "PIPELINE_TASK": "pipeline_lcm",
    "PhenotypePredictionPipeline": "pipeline_lcm",
    "LcmProcessor": "processing_lcm",
    "BeiVocabulary": "vocabulary_lcm",
    "LcmTrainer": "training.trainer",
    "LcmReadoutScheduleCallback": "training.trainer",
}
_registered = False


def register_auto_classes() -> None:
    """Register LCM with `AutoConfig`, `AutoModel`, `AutoModelForPreTraining`, `AutoFeatureExtractor` and the
    ``phenotype-prediction`` pipeline task (idempotent). Done lazily: on the first use of an `lcm_hf` name, or once
    transformers' Auto classes or pipeline registry are imported (`lcm_hf.auto_registration`)."""
    global _registered
    if _registered:
        return
    _registered = True
    _hook.remove()
    try:
        _register()
    except BaseException:
        _registered = False
        raise


def _register() -> None:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForPreTraining
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration_lcm import LcmConfig
    from .modeling_lcm import LcmForBeiPrediction, LcmModel
    from .pipeline_lcm import TASK as PIPELINE_TASK
    from .pipeline_lcm import PhenotypePredictionPipeline
    from .processing_lcm import LcmProcessor

    AutoConfig.register("lcm", LcmConfig, exist_ok=True)
    AutoModel.register(LcmConfig, LcmModel, exist_ok=True)
    AutoModelForPreTraining.register(LcmConfig, LcmForBeiPrediction, exist_ok=True)
    AutoFeatureExtractor.register(LcmConfig, LcmProcessor, exist_ok=True)
    if PIPELINE_TASK not in PIPELINE_REGISTRY.supported_tasks:  # transformers.pipeline("phenotype-prediction", ...)
        PIPELINE_REGISTRY.register_pipeline(
            PIPELINE_TASK, pipeline_class=PhenotypePredictionPipeline, pt_model=AutoModelForPreTraining
        )


# `import lcm_hf` stays light (`lcm-hf --help` needs no torch) and registers lazily (auto_registration.py): at the
# first use of a name above, or once transformers' Auto classes / pipeline registry are imported (then
# `AutoModel.from_pretrained(folder)` works right after `import lcm_hf`), or now if they are loaded already.
_hook = RegisterOnImport(register_auto_classes)
_hook.start(importing=__name__)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    register_auto_classes()
    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    value = getattr(module, "TASK" if name == "PIPELINE_TASK" else name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "LcmInputError",
    "LcmInputTypeError",
    "BeiVocabulary",
    "LcmReadoutScheduleCallback",
    "LcmTrainer",
    "LcmProcessor",
    "PhenotypePredictionPipeline",
    "PRESETS",
    "LcmConfig",
    "LcmForBeiPrediction",
    "LcmForBeiPredictionOutput",
    "LcmModel",
    "LcmModelOutput",
    "LcmPreTrainedModel",
    "logits_to_bei_predictions",
    "register_auto_classes",
]
