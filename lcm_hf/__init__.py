"""lcm-hf: the Large Connectome Model (LCM) as a HuggingFace-native package.

```python
from lcm_hf import LcmConfig, LcmForBeiPrediction, LcmProcessor, BeiVocabulary
```
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForPreTraining

from .configuration_lcm import PRESETS, LcmConfig
from .modeling_lcm import (
    LcmForBeiPrediction,
    LcmForBeiPredictionOutput,
    LcmModel,
    LcmModelOutput,
    LcmPreTrainedModel,
    logits_to_bei_predictions,
)
from .processing_lcm import LcmProcessor
from .vocabulary_lcm import BeiVocabulary

__version__ = "0.1.0"

AutoConfig.register("lcm", LcmConfig, exist_ok=True)
AutoModel.register(LcmConfig, LcmModel, exist_ok=True)
AutoModelForPreTraining.register(LcmConfig, LcmForBeiPrediction, exist_ok=True)
AutoFeatureExtractor.register(LcmConfig, LcmProcessor, exist_ok=True)

_LAZY = {"LcmTrainer": "trainer_lcm", "LcmReadoutScheduleCallback": "trainer_lcm"}  # import Trainer on first use


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BeiVocabulary",
    "LcmReadoutScheduleCallback",
    "LcmTrainer",
    "LcmProcessor",
    "PRESETS",
    "LcmConfig",
    "LcmForBeiPrediction",
    "LcmForBeiPredictionOutput",
    "LcmModel",
    "LcmModelOutput",
    "LcmPreTrainedModel",
    "logits_to_bei_predictions",
]
